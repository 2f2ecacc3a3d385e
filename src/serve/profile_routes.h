// The per-user routes (docs/openapi.yaml "users"): the profile (with its predictions when a
// predictor is loaded), the timeline, attribute updates, erasure, and profiles by the batch. Api
// owns one and forwards the matched routes to it.
//
// Threading: reads answer inline on the I/O thread (a profile is a few microseconds under its
// shard lock); attribute updates and erasure answer from the user's partition thread once they are
// durable.
#pragma once

#include "serve/api_context.h"
#include "serve/http_server.h"
#include "serve/request_target.h"

namespace persona::serve {

class ProfileRoutes {
 public:
  // `context` must outlive this object.
  explicit ProfileRoutes(ApiContext& context) : context_(context) {}
  ProfileRoutes(const ProfileRoutes&) = delete;
  ProfileRoutes& operator=(const ProfileRoutes&) = delete;

  void GetProfile(const HttpRequest& req, const RouteMatch& m, Responder& respond);
  void GetTimeline(const HttpRequest& req, const RouteMatch& m, Responder& respond);
  void PutAttributes(const HttpRequest& req, const RouteMatch& m, Responder& respond);
  void DeleteUser(const HttpRequest& req, const RouteMatch& m, Responder& respond);
  void BatchGet(const HttpRequest& req, const RouteMatch& m, Responder& respond);

 private:
  ApiContext& context_;
};

}  // namespace persona::serve
