// Exponential smoothing forecasts for a count series (category demand per hour or per day):
// simple (level), Holt (level + trend), seasonal (level + additive season of period m) and
// additive Holt-Winters (level + trend + season). The seasonal models are candidates only when the
// series holds at least two full seasons, since one season cannot tell a season from noise.
//
// Fitting: the smoothing parameters of each candidate are found by a coarse-to-fine grid search
// (steps of 0.1 over [0, 1], then 0.01 around the best point) minimising the one-step-ahead sum of
// squared errors; the candidate with the lowest AIC (n ln(SSE / n) + 2k over the same errors) wins.
// With two full seasons the candidates are seasonal and Holt-Winters only (one-step errors cannot
// see that the season matters at longer horizons; measured on taobao), otherwise simple and Holt.
// Season starts are averaged over every full season. Forecasts are clamped to >= 0 (counts).
//
// Intervals: ~95% (mean +- 1.96 sigma_h), sigma from the one-step residuals and growing with the
// horizon as in Hyndman et al. (2008): sigma_h^2 = sigma^2 (1 + sum_{j<h} c_j^2),
// c_j = alpha (1 + j beta) + gamma (1 - alpha) [j mod m == 0]. With too few residuals to estimate
// sigma the Poisson deviation sqrt(mean) of the series stands in.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace persona {

enum class SmoothingMethod : uint8_t { kSimple, kHolt, kSeasonal, kHoltWinters };
// "simple", "holt", "seasonal", "holt_winters".
std::string_view SmoothingMethodName(SmoothingMethod m);

struct ForecastPoint {
  double mean = 0;
  double lo = 0;  // ~95% interval, >= 0
  double hi = 0;
};

struct SmoothingForecast {
  SmoothingMethod method = SmoothingMethod::kSimple;
  double alpha = 0;                   // level
  double beta = 0;                    // trend (0 without a trend)
  double gamma = 0;                   // season (0 without a season)
  int period = 0;                     // season length used, 0 without a season
  double sigma = 0;                   // std of the one-step residuals (or the Poisson stand-in)
  double sse = 0;                     // one-step SSE of the chosen fit
  std::vector<ForecastPoint> points;  // horizon points, the first one step after the series
};

// Fits the series and forecasts `horizon` steps ahead. `period` <= 1 disables the seasonal
// models. An empty series forecasts zeros; a series of 1-2 points forecasts its last value (simple
// method, alpha 1). Cost: O(n) per parameter point, ~2,500 points for the seasonal models.
SmoothingForecast Forecast(std::span<const double> series, int horizon, int period);

// One-step SSE of a given parameter set (exposed for tests and tuning); errors are counted from
// the first step every candidate can predict (2, or `period` for the seasonal models).
double OneStepSse(std::span<const double> series, SmoothingMethod method, double alpha, double beta,
                  double gamma, int period);

}  // namespace persona
