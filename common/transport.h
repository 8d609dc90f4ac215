// Transport security for apq's gRPC connections: TLS with certificates from
// PEM files, mutual (each side proves itself) when the server is given a
// client CA. With no files, connections are plaintext, for a trusted
// network or loopback.
#ifndef APQ_COMMON_TRANSPORT_H_
#define APQ_COMMON_TRANSPORT_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"

namespace apq {

struct ServerTls {
  std::string cert, key;  // the server's chain and key: both, or neither (plaintext)
  std::string client_ca;  // clients must present a certificate signed by this CA
};

struct ClientTls {
  std::string ca;           // verifies the server; set to use TLS
  std::string cert, key;    // this client's certificate and key, for a server that asks
  std::string server_name;  // the name the server's certificate must carry (default: the host dialled)
};

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentialsFor(const ServerTls& tls);

// A client's TLS files, read and checked: what the agent loads before
// tracing starts, so bad flags are refused first, while its channel (and
// gRPC's threads) come once it has dropped its capabilities.
struct ClientTlsPems {
  bool use_tls = false;
  std::string ca, cert, key, server_name;
};
absl::StatusOr<ClientTlsPems> LoadClientTls(const ClientTls& tls);

// A channel to target (HOST:PORT) with these credentials and the given
// arguments (a server name override is added to them).
std::shared_ptr<grpc::Channel> ChannelWith(const std::string& target, const ClientTlsPems& tls,
                                           grpc::ChannelArguments arguments);
absl::StatusOr<std::shared_ptr<grpc::Channel>> ChannelTo(const std::string& target, const ClientTls& tls,
                                                         grpc::ChannelArguments arguments);

// Whether HOST:PORT names this machine's loopback (localhost, 127.x, [::1]).
bool IsLoopback(const std::string& host_port);

}  // namespace apq

#endif  // APQ_COMMON_TRANSPORT_H_
