// The TLS flags of apq's clients (agent and CLI), defined once.
#ifndef APQ_COMMON_CLIENT_TLS_FLAGS_H_
#define APQ_COMMON_CLIENT_TLS_FLAGS_H_

#include "common/transport.h"

namespace apq {

// --tls-ca, --tls-cert, --tls-key, --tls-server-name as given.
ClientTls ClientTlsFromFlags();

}  // namespace apq

#endif  // APQ_COMMON_CLIENT_TLS_FLAGS_H_
