#include "aggregator/admission.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace apq {
namespace {

constexpr absl::string_view kAgentPrefix = "apq://agent/", kReaderPrefix = "apq://reader/";
// Buckets are dropped once full again (they carry no debt) when there are
// more than this many: a flood of made-up host names cannot grow the map.
constexpr size_t kMaxIdleBuckets = 1 << 16;

}  // namespace

const char* RefusalLabel(Refusal refusal) {
  switch (refusal) {
#define APQ_REFUSAL_LABEL(name, label) \
  case Refusal::name:                  \
    return label;
    APQ_REFUSALS(APQ_REFUSAL_LABEL)
#undef APQ_REFUSAL_LABEL
  }
  return "unknown";
}

PeerGrants PeerGrants::Everyone() {
  PeerGrants grants;
  grants.everyone_ = true;
  return grants;
}

PeerGrants PeerGrants::FromAltNames(const std::vector<std::string>& names) {
  PeerGrants grants;
  for (const std::string& name : names) {
    if (absl::StartsWith(name, kAgentPrefix)) {
      std::vector<std::string> parts = absl::StrSplit(name.substr(kAgentPrefix.size()), '/');
      if (parts.size() == 2 && !parts[0].empty() && !parts[1].empty())
        grants.report_as_.emplace_back(parts[0], parts[1]);
    } else if (absl::StartsWith(name, kReaderPrefix)) {
      std::string cluster = name.substr(kReaderPrefix.size());
      if (!cluster.empty() && !absl::StrContains(cluster, '/')) grants.read_.push_back(std::move(cluster));
    }
  }
  return grants;
}

std::string PeerGrants::Granted() const {
  std::vector<std::string> granted;
  for (const auto& [cluster, host] : report_as_) granted.push_back(absl::StrCat("report as ", cluster, "/", host));
  for (const std::string& cluster : read_) granted.push_back(absl::StrCat("read ", cluster));
  return granted.empty() ? "nothing (no apq:// names)" : absl::StrJoin(granted, ", ");
}

absl::Status PeerGrants::MayReport(const std::string& cluster, const std::string& host) const {
  if (everyone_) return absl::OkStatus();
  for (const auto& [granted_cluster, granted_host] : report_as_) {
    if (granted_cluster == cluster && (granted_host == "*" || granted_host == host)) return absl::OkStatus();
  }
  return absl::PermissionDeniedError(absl::StrCat("this certificate may not report as cluster '", cluster, "' host '",
                                                  host, "'; it grants: ", Granted()));
}

absl::Status PeerGrants::MayRead(const std::string& cluster) const {
  if (everyone_) return absl::OkStatus();
  if (std::any_of(read_.begin(), read_.end(), [&](const std::string& c) { return c == "*" || c == cluster; })) {
    return absl::OkStatus();
  }
  return absl::PermissionDeniedError(
      absl::StrCat("this certificate may not read cluster '", cluster, "'; it grants: ", Granted()));
}

bool HostRateLimiter::Take(const std::string& host_key, uint64_t bytes, int64_t now_millis) {
  if (bytes_per_second_ <= 0) return true;
  absl::MutexLock lock(&mu_);
  auto refilled = [&](const Bucket& bucket) {
    const double elapsed = std::max<int64_t>(now_millis - bucket.at_millis, 0) / 1000.0;
    return std::min(burst_bytes_, bucket.tokens + elapsed * bytes_per_second_);
  };
  if (buckets_.size() > kMaxIdleBuckets && !buckets_.contains(host_key)) {
    absl::erase_if(buckets_, [&](const auto& entry) { return refilled(entry.second) >= burst_bytes_; });
  }
  auto [it, added] = buckets_.try_emplace(host_key, Bucket{burst_bytes_, now_millis});
  Bucket& bucket = it->second;
  bucket.tokens = refilled(bucket);
  bucket.at_millis = now_millis;  // a clock stepped back refills from here, and holds no host off
  if (static_cast<double>(bytes) > bucket.tokens) return false;
  bucket.tokens -= static_cast<double>(bytes);
  return true;
}

}  // namespace apq
