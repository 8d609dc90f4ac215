#include "common/client_tls_flags.h"

#include <string>

#include "absl/flags/flag.h"

ABSL_FLAG(std::string, tls_ca, "",
          "PEM file of the CA that signed the aggregator's certificate: connect with TLS (default: plaintext).");
ABSL_FLAG(std::string, tls_cert, "",
          "With --tls-ca: PEM certificate chain of this client, for an aggregator "
          "that requires client certificates (--tls-client-ca).");
ABSL_FLAG(std::string, tls_key, "", "With --tls-cert: PEM private key of that certificate.");
ABSL_FLAG(std::string, tls_server_name, "",
          "With --tls-ca: the name the aggregator's certificate must carry (default: the host in --aggregator).");

namespace apq {

ClientTls ClientTlsFromFlags() {
  return {absl::GetFlag(FLAGS_tls_ca), absl::GetFlag(FLAGS_tls_cert), absl::GetFlag(FLAGS_tls_key),
          absl::GetFlag(FLAGS_tls_server_name)};
}

}  // namespace apq
