// apq-aggregator: receives the agents' streams, stores them in SQLite, and
// answers fleet queries.
#include <signal.h>

#include <thread>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/log.h"
#include "common/files.h"
#include "aggregator/ingest_service.h"
#include "aggregator/query_web.h"
#include "aggregator/query_service.h"
#include "common/http_server.h"
#include "common/status_macros.h"
#include "common/help.h"
#include "common/ready_file.h"
#include "common/transport.h"
#include "common/wire_limits.h"
#include "grpcpp/grpcpp.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:7070",
          "Address to listen on (HOST:PORT). Beyond localhost, give --tls-cert and --tls-key (and --tls-client-ca).");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate chain of this aggregator: serve TLS (default: plaintext).");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls-cert.");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM file of the CA whose certificates agents and CLIs must present (mutual TLS): without it, anyone who "
          "reaches the port can report and query.");
ABSL_FLAG(std::string, http, "",
          "Serve HTTP on HOST:PORT: the web view at / (top, flame graph, hosts, explain, diff) and /metrics for "
          "Prometheus. Off unless given; plaintext and unauthenticated: keep it on loopback or a management network.");
ABSL_FLAG(std::string, db, "apq.db", "SQLite database file (created if missing).");
ABSL_FLAG(double, fresh_seconds, 60, "A host is part of 'now' if it reported within this many seconds.");
ABSL_FLAG(absl::Duration, keep_minutes, absl::Hours(48),
          "History: keep the per-minute samples of each cluster's paths this long.");
ABSL_FLAG(absl::Duration, keep_hours, absl::Hours(24 * 90),
          "History: keep each cluster's hourly last and peak per path this long.");
ABSL_FLAG(double, sample_seconds, 60,
          "History: seconds between samples of the fleet. History keeps one sample a minute (the minute's "
          "newest) and each hour's peak over all samples; shorter intervals are for tests and demos.");
ABSL_FLAG(absl::Duration, keep_host_hours, absl::Hours(24 * 14),
          "History: keep each host's hourly largest paths this long.");

ABSL_FLAG(int64_t, max_hosts_per_cluster, 100'000,
          "Hosts a cluster may have in memory (reported within --fresh-seconds or connected); another host's "
          "stream is refused and counted.");
ABSL_FLAG(int64_t, max_stacks_per_cluster, int64_t{1} << 24,
          "Distinct stacks the epochs of a cluster may define in memory; a report beyond is refused and counted.");
ABSL_FLAG(double, max_host_bytes_per_second, 1 << 20,
          "Bytes per second a host may send on average, with bursts up to the largest message either end accepts "
          "(an agent's catch-up after a partition); a stream beyond is ended and counted, its agent reconnects and "
          "resends (0: no limit).");

namespace {

absl::StatusOr<apq::ClusterLimits> ClusterLimitsFromFlags() {
  const int64_t hosts = absl::GetFlag(FLAGS_max_hosts_per_cluster),
                stacks = absl::GetFlag(FLAGS_max_stacks_per_cluster);
  if (hosts < 1 || stacks < 1) {
    return absl::InvalidArgumentError("--max-hosts-per-cluster and --max-stacks-per-cluster must be at least 1");
  }
  return apq::ClusterLimits{static_cast<size_t>(hosts), static_cast<size_t>(stacks)};
}

absl::Status Run() {
  double fresh = absl::GetFlag(FLAGS_fresh_seconds);
  if (!(fresh > 0 && fresh < 86400 * 365)) return absl::InvalidArgumentError("--fresh-seconds must be positive");
  apq::Retention retention;
  int64_t* kept[] = {&retention.minute_millis, &retention.hour_millis, &retention.host_hour_millis};
  const char* names[] = {"--keep-minutes", "--keep-hours", "--keep-host-hours"};
  absl::Duration durations[] = {absl::GetFlag(FLAGS_keep_minutes), absl::GetFlag(FLAGS_keep_hours),
                                absl::GetFlag(FLAGS_keep_host_hours)};
  for (int i = 0; i < 3; ++i) {
    if (durations[i] < absl::Minutes(1) || durations[i] > absl::Hours(24 * 3650)) {
      return absl::InvalidArgumentError(absl::StrCat(names[i], " must be between 1m and 87600h"));
    }
    *kept[i] = absl::ToInt64Milliseconds(durations[i]);
  }
  double sample_seconds = absl::GetFlag(FLAGS_sample_seconds);
  if (!(sample_seconds >= 1 && sample_seconds <= 60)) {
    return absl::InvalidArgumentError("--sample-seconds must be between 1 and 60");
  }
  const auto sample_millis = static_cast<int64_t>(sample_seconds * 1000);
  const apq::ServerTls tls{absl::GetFlag(FLAGS_tls_cert), absl::GetFlag(FLAGS_tls_key),
                           absl::GetFlag(FLAGS_tls_client_ca)};
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials = apq::ServerCredentialsFor(tls);
  if (!credentials.ok()) return credentials.status();
  const std::string listen = absl::GetFlag(FLAGS_listen);
  if (!apq::IsLoopback(listen) && tls.client_ca.empty()) {
    APQ_LOG() << "warning: " << listen << " is reachable beyond this machine and "
              << (tls.cert.empty() ? "unencrypted (no --tls-cert)" : "admits any client (no --tls-client-ca)");
  }
  const bool client_certificates = !tls.client_ca.empty();
  const std::string http_address = absl::GetFlag(FLAGS_http);
  if (client_certificates && !http_address.empty() && !apq::IsLoopback(http_address)) {
    return absl::InvalidArgumentError(
        "--http serves every cluster without asking for a certificate: with --tls-client-ca, bind it to loopback");
  }
  const double host_rate = absl::GetFlag(FLAGS_max_host_bytes_per_second);
  if (!(host_rate >= 0)) return absl::InvalidArgumentError("--max-host-bytes-per-second must be 0 or more");
  APQ_ASSIGN_OR_RETURN(const apq::ClusterLimits limits, ClusterLimitsFromFlags());
  absl::StatusOr<std::unique_ptr<apq::Store>> store = apq::Store::Open(absl::GetFlag(FLAGS_db), retention);
  if (!store.ok()) return store.status();
  absl::StatusOr<std::unique_ptr<apq::Fleet>> fleet =
      apq::Fleet::Start(std::move(*store), static_cast<int64_t>(fresh * 1000), apq::UnixMillis, limits);
  if (!fleet.ok()) return fleet.status();
  apq::HostRateLimiter host_rate_limiter(host_rate, apq::kMaxMessageBytes);
  apq::IngestService ingest(fleet->get(), client_certificates, &host_rate_limiter);
  apq::QueryService query(fleet->get(), client_certificates);

  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, *credentials, &port);
  builder.SetMaxReceiveMessageSize(apq::kMaxMessageBytes);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, apq::kKeepaliveMillis / 2);
  builder.RegisterService(&ingest);
  builder.RegisterService(&query);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", listen));
  }
  std::unique_ptr<apq::HttpServer> http;
  if (!http_address.empty()) {
    absl::StatusOr<std::unique_ptr<apq::HttpServer>> started =
        apq::HttpServer::Start(http_address, apq::HttpRoutes(fleet->get(), apq::UnixMillis));
    if (!started.ok()) return started.status();
    http = std::move(*started);
    APQ_LOG() << "http on port " << http->port() << " (/ the web view, /metrics)";
  }
  APQ_LOG() << "listening on port " << port << ", "
            << (tls.cert.empty()        ? "plaintext"
                : tls.client_ca.empty() ? "TLS"
                                        : "mutual TLS")
            << ", database " << absl::GetFlag(FLAGS_db);
  apq::ReadyFacts ready = {{"grpc_port", port}};
  if (http) ready.emplace_back("http_port", http->port());
  APQ_RETURN_IF_ERROR(apq::AnnounceReady(apq::ReadyFileFromFlag(), ready));

  // History: a sample of the fleet at the start of every minute (by default).
  absl::Notification stopped;
  std::thread sampler([&] {
    while (!stopped.WaitForNotificationWithTimeout(
        absl::Milliseconds(sample_millis - apq::UnixMillis() % sample_millis))) {
      const absl::Time start = absl::Now();
      if (absl::Status status = (*fleet)->Sample(); !status.ok()) {
        APQ_LOG() << "history sample not stored: " << status.message();
      } else if (absl::Duration took = absl::Now() - start; took >= absl::Seconds(1)) {
        APQ_LOG() << "slow history sample: " << absl::FormatDuration(took);
      }
    }
  });
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  int signal = 0;
  sigwait(&stop, &signal);
  stopped.Notify();
  sampler.join();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  return absl::OkStatus();
}

const apq::ProgramHelp kHelp = {
    "apq-aggregator",
    "receives the agents' streams, keeps the fleet's state and history in SQLite, and answers apq's queries.",
    {{"",
      "apq-aggregator [--listen HOST:PORT] [--db PATH] [--tls-cert PEM --tls-key PEM [--tls-client-ca PEM]]",
      "Serves agents (ingest) and the apq command (queries) on one port until SIGINT or SIGTERM. An agent's report "
      "is acknowledged once stored: a restart loses nothing acknowledged.",
      {"listen", "tls_cert", "tls_key", "tls_client_ca", "http", "db", "fresh_seconds", "sample_seconds",
       "keep_minutes", "keep_hours", "keep_host_hours", "max_hosts_per_cluster", "max_stacks_per_cluster",
       "max_host_bytes_per_second", "ready_file"}}},
    {},
    ""};

}  // namespace

int main(int argc, char** argv) {
  // Block the stop signals before gRPC starts its threads, so sigwait gets them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  apq::SetLogProgram("apq-aggregator");
  std::vector<std::string> positional = apq::ParseFlagsOrHelp(argc, argv, kHelp);
  if (positional.size() > 1) {
    APQ_LOG() << "unexpected argument '" << positional[1] << "' (apq-aggregator --help lists the flags)";
    return apq::kExitBadUsage;
  }
  return apq::ExitStatusOf("apq-aggregator", Run());
}
