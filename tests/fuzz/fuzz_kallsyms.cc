// libFuzzer target: /proc/kallsyms text as the agent parses it, and a
// symbol table from the wire as the aggregator turns it into names.
#include <cstddef>
#include <cstdint>
#include <string>

#include "apq/v1/apq.pb.h"
#include "common/kernel_symbols.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<apq::KernelSymbols> symbols = apq::KernelSymbols::Parse(text);
  uint64_t probe = 0;
  for (size_t i = 0; i < size && i < 8; ++i) probe = (probe << 8) | data[i];
  if (symbols.ok()) {
    (void)symbols->NameOf(probe);
    (void)symbols->NameOf(~probe);
  }
  apq::v1::SymbolTable table;
  if (table.ParseFromArray(data, static_cast<int>(size))) {
    std::vector<std::pair<uint64_t, std::string>> offsets;
    for (const apq::v1::Symbol& s : table.symbols()) offsets.emplace_back(s.offset(), s.name());
    const apq::KernelSymbols from_wire = apq::KernelSymbols::FromOffsets(offsets);
    (void)from_wire.Resolve(probe);
  }
  return 0;
}
