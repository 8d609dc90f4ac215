#ifndef APQ_AGGREGATOR_ADMISSION_H_
#define APQ_AGGREGATOR_ADMISSION_H_

// Who may do what at the aggregator, and how much: the pure rules. The
// services apply them to each peer (ingest_service, query_service) and the
// fleet to each cluster; every refusal is counted by its reason and shown
// on /metrics.

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace apq {

// Why a peer was turned away: X(enumerator, metric label).
#define APQ_REFUSALS(X)                                                                           \
  X(kReportNotGranted, "report_not_granted") /* the certificate does not name the cluster/host */ \
  X(kReadNotGranted, "read_not_granted")     /* the certificate does not name the cluster */      \
  X(kInvalidMessage, "invalid_message")      /* malformed, or over a size limit */                \
  X(kClusterHosts, "cluster_hosts_limit")    /* --max-hosts-per-cluster */                        \
  X(kClusterStacks, "cluster_stacks_limit")  /* --max-stacks-per-cluster */                       \
  X(kHostRate, "host_rate_limit")            /* --max-host-bytes-per-second */

enum class Refusal {
#define APQ_REFUSAL_ENUMERATOR(name, label) name,
  APQ_REFUSALS(APQ_REFUSAL_ENUMERATOR)
#undef APQ_REFUSAL_ENUMERATOR
};
inline constexpr int kNumRefusals = 0
#define APQ_REFUSAL_ONE(name, label) +1
    APQ_REFUSALS(APQ_REFUSAL_ONE)
#undef APQ_REFUSAL_ONE
    ;
const char* RefusalLabel(Refusal refusal);

class RefusalCounts {
 public:
  void Count(Refusal refusal) { counts_[static_cast<int>(refusal)].fetch_add(1, std::memory_order_relaxed); }
  uint64_t Of(Refusal refusal) const { return counts_[static_cast<int>(refusal)].load(std::memory_order_relaxed); }

 private:
  std::array<std::atomic<uint64_t>, kNumRefusals> counts_{};
};

// What a peer's certificate lets it do, read from its subject alternative
// names as deploy/apq-certs writes them: apq://agent/CLUSTER/HOST (HOST "*":
// any host of CLUSTER) lets an agent report as that cluster and host;
// apq://reader/CLUSTER (CLUSTER "*": every cluster) lets a client read it.
// Other names (DNS, IP, other URIs) grant nothing.
class PeerGrants {
 public:
  // Where the aggregator asks for no client certificate (plaintext, or TLS
  // without --tls-client-ca), the network is the boundary: all is allowed.
  static PeerGrants Everyone();
  static PeerGrants FromAltNames(const std::vector<std::string>& names);

  // PermissionDenied, naming what the certificate does grant, or OK.
  absl::Status MayReport(const std::string& cluster, const std::string& host) const;
  absl::Status MayRead(const std::string& cluster) const;

 private:
  std::string Granted() const;

  bool everyone_ = false;
  std::vector<std::pair<std::string, std::string>> report_as_;  // cluster, host ("*": any)
  std::vector<std::string> read_;                               // clusters ("*": every)
};

// Bytes each host may send: a token bucket per host, refilled at
// bytes_per_second up to burst_bytes, so a host catching up after a
// partition (at most its agent's buffer) goes through at once while one
// that floods is slowed to the rate. bytes_per_second 0: no limit.
class HostRateLimiter {
 public:
  HostRateLimiter(double bytes_per_second, double burst_bytes)
      : bytes_per_second_(bytes_per_second), burst_bytes_(burst_bytes) {}
  // Whether host_key may send `bytes` at now_millis; if so they are taken.
  bool Take(const std::string& host_key, uint64_t bytes, int64_t now_millis);

 private:
  struct Bucket {
    double tokens = 0;
    int64_t at_millis = 0;
  };
  const double bytes_per_second_, burst_bytes_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace apq

#endif  // APQ_AGGREGATOR_ADMISSION_H_
