#ifndef APQ_COMMON_KERNEL_SYMBOLS_H_
#define APQ_COMMON_KERNEL_SYMBOLS_H_

#include <cstdint>
#include <optional>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/statusor.h"

namespace apq {

// A function symbol resolved from an address.
struct ResolvedSymbol {
  absl::string_view name;
  absl::string_view module;  // empty for the kernel image
  uint64_t offset = 0;       // from the symbol's start
};

// Kernel text symbols, as /proc/kallsyms lists them.
class KernelSymbols {
 public:
  // Parses kallsyms text. Lines that are not "ADDR TYPE NAME [MODULE]" are
  // an error naming the line; data symbols are skipped. Fails when every
  // address is zero (kptr_restrict hides them from this user).
  static absl::StatusOr<KernelSymbols> Parse(absl::string_view text);
  static absl::StatusOr<KernelSymbols> LoadFromProc(const std::string& path = "/proc/kallsyms");

  // The text symbol containing addr, if any. A symbol is taken to end where
  // the next one starts.
  std::optional<ResolvedSymbol> Resolve(uint64_t addr) const;
  // The name of the symbol containing addr, or "0x<hex>" if none.
  std::string NameOf(uint64_t addr) const;

  size_t size() const { return symbols_.size(); }

  // Where a code object's text starts: _stext (or _text) for the kernel
  // image (module ""), the lowest text symbol of a module. Offsets from it
  // are the same on every host running that build, whatever KASLR did.
  std::optional<uint64_t> TextBase(absl::string_view module) const;
  // The object's text symbols as (offset from its text base, name).
  std::vector<std::pair<uint64_t, std::string>> OffsetsOf(absl::string_view module) const;
  // A table whose addresses are offsets (the aggregator's side of the above).
  static KernelSymbols FromOffsets(const std::vector<std::pair<uint64_t, std::string>>& symbols);

 private:
  struct Symbol {
    uint64_t addr;
    std::string name;
    std::string module;
  };
  std::vector<Symbol> symbols_;  // sorted by addr
};

}  // namespace apq

#endif  // APQ_COMMON_KERNEL_SYMBOLS_H_
