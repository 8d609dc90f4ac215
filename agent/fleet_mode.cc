#include "agent/fleet_mode.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "agent/classifications.h"
#include "agent/code_objects.h"
#include "agent/fleet_classes.h"
#include "agent/report.h"
#include "agent/report_stream.h"
#include "agent/start_holders.h"
#include "agent/stop_signals.h"
#include "apq/v1/apq.grpc.pb.h"
#include "agent/agent_metrics.h"
#include "common/log.h"
#include "common/build_id.h"
#include "common/http_server.h"
#include "common/prometheus.h"
#include "common/cgroup_names.h"
#include "common/files.h"
#include "common/kernel_symbols.h"
#include "common/page_census.h"
#include "common/wire_limits.h"
#include "agent/privileges.h"
#include "grpcpp/grpcpp.h"
#include "common/ready_file.h"
#include "common/status_macros.h"

namespace apq {
namespace {

absl::StatusOr<apq::v1::Hello> MakeHello(const FleetOptions& options) {
  apq::v1::Hello hello;
  hello.set_cluster(options.cluster);
  std::string host = options.host;
  if (host.empty()) {
    APQ_ASSIGN_OR_RETURN(host, ThisHostName());
  }
  hello.set_host(host);
  absl::StatusOr<std::string> boot_id = ReadFileToString("/proc/sys/kernel/random/boot_id");
  if (!boot_id.ok()) return boot_id.status();
  absl::string_view id = absl::StripAsciiWhitespace(*boot_id);
  if (id.empty()) return absl::NotFoundError("/proc/sys/kernel/random/boot_id is empty");
  hello.mutable_epoch()->set_boot_id(std::string(id));
  std::random_device random;
  hello.mutable_epoch()->set_agent_instance((uint64_t{random()} << 32) | random());
  utsname uts{};
  uname(&uts);
  hello.mutable_kernel()->set_release(uts.release);
  hello.mutable_kernel()->set_build_id(BuildIdOfLoadedObject(""));
  hello.set_sample_bytes(options.tracker.sampling.sample_bytes());
  return hello;
}

// One connection to the aggregator. The reader thread takes acks, symbol
// requests and snapshot requests; the main loop writes.
class Connection {
 public:
  Connection(apq::v1::Ingest::Stub* stub, ReportStream* reports, absl::Mutex* mu) : reports_(reports), mu_(mu) {
    stream_ = stub->Stream(&context_);
    reader_ = std::thread([this] { ReadLoop(); });
  }
  ~Connection() { Close().IgnoreError(); }
  // Ends the stream; returns how the aggregator ended it.
  grpc::Status Close() {
    if (closed_) return grpc::Status::OK;
    closed_ = true;
    // A stream the aggregator ended already carries its status (a refusal
    // and its reason): cancelling it would replace that with CANCELLED.
    if (alive_.load()) context_.TryCancel();
    reader_.join();
    return stream_->Finish();
  }
  bool alive() const { return alive_.load(); }
  // Whether the aggregator has acknowledged anything on this connection.
  bool acknowledged() const { return acknowledged_.load(); }
  bool Write(const apq::v1::AgentMessage& message) {
    if (!alive_.load() || !stream_->Write(message)) alive_ = false;
    return alive_.load();
  }
  // Sends every report after the last one sent on this connection.
  bool SendPending(uint64_t* bytes_sent, uint64_t* reports_sent) {
    std::vector<apq::v1::AgentMessage> pending;
    {
      absl::MutexLock lock(mu_);
      for (const apq::v1::Report& report : reports_->unacknowledged()) {
        if (report.sequence() <= last_sent_) continue;
        *pending.emplace_back().mutable_report() = report;
        last_sent_ = report.sequence();
      }
    }
    for (const apq::v1::AgentMessage& message : pending) {
      *bytes_sent += message.ByteSizeLong();
      if (!Write(message)) return false;
      ++*reports_sent;
    }
    return true;
  }
  std::vector<std::string> TakeSymbolRequests() {
    absl::MutexLock lock(mu_);
    return std::exchange(symbol_requests_, {});
  }

 private:
  void ReadLoop() {
    apq::v1::AggregatorMessage message;
    while (stream_->Read(&message)) {
      absl::MutexLock lock(mu_);
      if (message.has_ack()) {
        reports_->Acknowledge(message.ack().sequence());
        acknowledged_ = true;
      } else if (message.has_need_symbols()) {
        symbol_requests_.push_back(message.need_symbols().object());
      } else if (message.has_need_snapshot()) {
        // The queued deltas would be refused again: skip them; the snapshot
        // the next interval builds follows them.
        reports_->RequestSnapshot();
        if (!reports_->unacknowledged().empty()) last_sent_ = reports_->unacknowledged().back().sequence();
      }
    }
    alive_ = false;
  }

  std::atomic<bool> acknowledged_{false};
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<apq::v1::AgentMessage, apq::v1::AggregatorMessage>> stream_;
  ReportStream* reports_;
  absl::Mutex* mu_;
  uint64_t last_sent_ = 0;
  std::vector<std::string> symbol_requests_;
  std::atomic<bool> alive_{true};
  bool closed_ = false;
  std::thread reader_;
};

// PageCensus::HiddenEstimate() at start, in bytes; nullopt if the census failed.
std::optional<uint64_t> HeldAtStartBytes() {
  absl::StatusOr<PageCensus> census = TakePageCensus();
  if (census.ok()) return census->HiddenEstimate() * kPageSize;
  APQ_LOG() << "no census of pages in use at start: " << census.status().message();
  return std::nullopt;
}

}  // namespace

absl::Status RunFleet(const FleetOptions& options) {
  StopSignals signals;
  absl::StatusOr<apq::v1::Hello> hello = MakeHello(options);
  if (!hello.ok()) return hello.status();
  // Bad TLS settings are refused before tracing starts.
  APQ_ASSIGN_OR_RETURN(const ClientTlsPems tls, LoadClientTls(options.tls));
  absl::StatusOr<std::unique_ptr<BpfPageTracker>> tracker = BpfPageTracker::Start(options.tracker);
  if (!tracker.ok()) return tracker.status();
  const std::optional<uint64_t> held_at_start = HeldAtStartBytes();
  absl::StatusOr<KernelSymbols> symbols = KernelSymbols::LoadFromProc();
  if (!symbols.ok()) return symbols.status();
  KallsymsFrameEncoder frames(&*symbols, BuildIdOfLoadedObject);
  FleetClassifier classifier(&*symbols, held_at_start, FindStartHolders());
  Classifications classifications(tracker->get(), &classifier, options.classify_seconds, kFleetClassifyCpuShare);
  absl::Mutex mu;
  CgroupNames cgroups;
  ReportStream reports(&frames, options.buffer_bytes, [&](uint64_t id) { return cgroups.NameOf(id); });
  apq::v1::Coverage coverage;
  for (const std::string& path : (*tracker)->coverage().hooked_paths) coverage.add_hooked(path);
  for (const std::string& path : (*tracker)->coverage().blind_paths) coverage.add_not_visible(path);

  APQ_LOG() << "tracing started, mode "
            << (options.tracker.sampling.exact()
                    ? "exact"
                    : absl::StrCat("sampled, --sample-bytes ", options.tracker.sampling.sample_bytes()))
            << ", streaming to " << options.aggregator << (options.tls.ca.empty() ? " (plaintext)" : " (TLS)") << " as "
            << hello->cluster() << "/" << hello->host();

  // Before any thread exists (capabilities are per thread; new threads
  // copy their maker's): gRPC's and the HTTP server's come after.
  APQ_RETURN_IF_ERROR(DropCapabilitiesAfterStart());
  grpc::ChannelArguments arguments;
  arguments.SetMaxSendMessageSize(kMaxMessageBytes);
  arguments.SetMaxReceiveMessageSize(kMaxMessageBytes);
  arguments.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, kKeepaliveMillis);
  arguments.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, kKeepaliveMillis);
  arguments.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  arguments.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  std::shared_ptr<grpc::Channel> channel = ChannelWith(options.aggregator, tls, arguments);
  std::unique_ptr<apq::v1::Ingest::Stub> stub = apq::v1::Ingest::NewStub(channel);

  // --metrics: the health of the last interval, read by the HTTP thread.
  absl::Mutex health_mu;
  AgentHealth health;
  health.buffer_bytes = options.buffer_bytes;
  std::unique_ptr<HttpServer> metrics;
  if (!options.metrics_address.empty()) {
    APQ_ASSIGN_OR_RETURN(metrics, HttpServer::Start(options.metrics_address,
                                                    {{"/metrics", kPrometheusContentType,
                                                      [&](const HttpServer::Params&) -> absl::StatusOr<std::string> {
                                                        // The queue as of now (acks come between
                                                        // intervals); the rest as of the last interval.
                                                        absl::MutexLock lock(&mu);
                                                        absl::MutexLock health_lock(&health_mu);
                                                        AgentHealth now = health;
                                                        now.reports_unacknowledged = reports.unacknowledged().size();
                                                        now.unacknowledged_bytes = reports.queued_bytes();
                                                        // The stream's count: health.losses are the
                                                        // tracker's, which has none, each interval anew.
                                                        now.losses.set_reports_dropped(reports.reports_dropped());
                                                        return PrometheusText(AgentMetrics(now));
                                                      }}}));
    APQ_LOG() << "metrics on port " << metrics->port();
  }
  APQ_RETURN_IF_ERROR(
      AnnounceReady(options.ready_file, metrics ? ReadyFacts{{"metrics_port", metrics->port()}} : ReadyFacts{}));

  std::unique_ptr<Connection> connection;
  uint64_t total_bytes_sent = 0, intervals = 0, reports_sent = 0;
  double start = std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  bool stop = false;
  std::optional<bool> was_connected;  // the first outcome is always reported
  std::string last_refusal;
  while (!stop) {
    absl::StatusOr<TrackerSnapshot> snapshot = (*tracker)->Snapshot();
    if (!snapshot.ok()) return snapshot.status();
    std::optional<ClassifiedPages> classified = classifications.MaybeClassify(&*snapshot);
    const apq::v1::Losses losses = LossesOf(*snapshot);
    {
      absl::MutexLock lock(&mu);
      reports.Add(*snapshot, losses, coverage, snapshot->unix_millis, classified ? &*classified : nullptr);
    }
    {
      absl::MutexLock lock(&health_mu);
      health.losses = losses;
      health.outstanding_bytes = 0;
      for (const TrackerSnapshot::Owner& owner : snapshot->owners) {
        health.outstanding_bytes +=
            static_cast<uint64_t>(std::max<int64_t>(owner.counters.pages_outstanding, 0)) * kPageSize;
      }
      if (classified) {
        health.class_bytes.emplace();
        for (const auto& [owner, counts] : classified->owners) {
          for (int c = 0; c < kNumPageClasses; ++c) (*health.class_bytes)[c] += counts[c] * kPageSize;
        }
      }
      health.classifications = static_cast<uint64_t>(classifications.done());
      health.classification_seconds = classifications.seconds();
    }
    if (connection && !connection->alive()) {
      grpc::Status ended = connection->Close();
      if (ended.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
        // The aggregator refused a report: resending it would be refused
        // again. Say why, and start over from a full snapshot.
        APQ_LOG() << "the aggregator refused a report: " << ended.error_message() << "; sending a full snapshot";
        absl::MutexLock lock(&mu);
        reports.RequestSnapshot();
      } else if (ended.error_code() == grpc::StatusCode::PERMISSION_DENIED ||
                 ended.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
        // Not granted, or over a limit: the reports stay buffered and go
        // again on the next connection. Said once per reason, not per retry.
        if (ended.error_message() != last_refusal) {
          APQ_LOG() << "the stream to the aggregator ended: " << ended.error_message()
                    << "; reports stay buffered, retrying";
          last_refusal = ended.error_message();
        }
      }
      connection.reset();
    }
    if (!connection) {
      // Connect without blocking the loop for long: the tracker keeps counting meanwhile.
      // Wait at most half an interval (and a second): an aggregator that
      // does not answer must not slow the reports that pile up meanwhile.
      const auto connect_wait = std::chrono::duration<double>(std::min(1.0, options.interval_seconds / 2));
      if (channel->WaitForConnected(std::chrono::system_clock::now() +
                                    std::chrono::duration_cast<std::chrono::system_clock::duration>(connect_wait))) {
        connection = std::make_unique<Connection>(stub.get(), &reports, &mu);
        apq::v1::AgentMessage message;
        *message.mutable_hello() = *hello;
        if (!connection->Write(message)) connection.reset();
      }
    }
    uint64_t bytes_sent = 0;
    if (connection) {
      for (const std::string& object : connection->TakeSymbolRequests()) {
        std::optional<apq::v1::SymbolTable> table = frames.SymbolTableOf(object);
        if (!table) continue;  // not an object this agent announced
        apq::v1::AgentMessage message;
        *message.mutable_symbols() = std::move(*table);
        bytes_sent += message.ByteSizeLong();
        connection->Write(message);
      }
      connection->SendPending(&bytes_sent, &reports_sent);
    }
    total_bytes_sent += bytes_sent;
    ++intervals;
    bool connected = connection && connection->alive();
    {
      absl::MutexLock lock(&mu);
      absl::MutexLock health_lock(&health_mu);
      health.connected = connected;
      health.intervals = intervals;
      health.bytes_sent = total_bytes_sent;
      health.reports_sent = reports_sent;
      health.last_sequence = reports.last_sequence();
      // Accepted again: a refusal from now on is news again.
      if (connected && connection->acknowledged()) last_refusal.clear();
    }
    if (!was_connected || connected != *was_connected) {
      absl::MutexLock lock(&mu);
      APQ_LOG() << (connected ? "connected to " : "aggregator unreachable: ") << options.aggregator << ", "
                << reports.unacknowledged().size() << " reports (" << reports.queued_bytes()
                << " bytes) unacknowledged";
      was_connected = connected;
    }
    double now = std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
    double wait = options.interval_seconds;
    if (options.duration_seconds > 0) {
      if (now - start >= options.duration_seconds) break;
      wait = std::min(wait, options.duration_seconds - (now - start));
    }
    stop = !signals.Sleep(wait);
  }
  // A last report on the way out, so the aggregator sees the final counts.
  if (connection && connection->alive()) {
    absl::StatusOr<TrackerSnapshot> last = (*tracker)->Snapshot();
    if (last.ok()) {
      std::optional<ClassifiedPages> classified = classifications.MaybeClassify(&*last);
      absl::MutexLock lock(&mu);
      reports.Add(*last, LossesOf(*last), coverage, last->unix_millis, classified ? &*classified : nullptr);
    }
    connection->SendPending(&total_bytes_sent, &reports_sent);
  }
  APQ_LOG() << "sent " << total_bytes_sent << " bytes of reports and symbols over " << intervals
            << " intervals; classified the pages " << classifications.done() << " times, "
            << absl::StrFormat("%.2f", classifications.seconds()) << " s in all";
  return absl::OkStatus();
}

}  // namespace apq
