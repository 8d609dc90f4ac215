#include "common/kernel_symbols.h"

#include <algorithm>
#include <charconv>

#include "absl/status/status.h"
#include "common/files.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace apq {
namespace {

bool IsTextType(char type) { return type == 't' || type == 'T' || type == 'w' || type == 'W'; }

}  // namespace

absl::StatusOr<KernelSymbols> KernelSymbols::Parse(absl::string_view text) {
  KernelSymbols result;
  bool any_nonzero = false;
  size_t line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    if (line.empty()) continue;
    std::vector<absl::string_view> fields = absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (fields.size() < 3 || fields.size() > 4 || fields[1].size() != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "kallsyms line ", line_number, ": expected 'ADDR TYPE NAME [MODULE]', got '", line.substr(0, 120), "'"));
    }
    uint64_t addr = 0;
    auto [end, ec] = std::from_chars(fields[0].data(), fields[0].data() + fields[0].size(), addr, 16);
    if (ec != std::errc() || end != fields[0].data() + fields[0].size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("kallsyms line ", line_number, ": bad address '", fields[0].substr(0, 40), "'"));
    }
    if (addr != 0) any_nonzero = true;
    if (!IsTextType(fields[1][0])) continue;
    absl::string_view module;
    if (fields.size() == 4) {
      module = fields[3];
      if (module.size() < 2 || module.front() != '[' || module.back() != ']') {
        return absl::InvalidArgumentError(
            absl::StrCat("kallsyms line ", line_number, ": bad module field '", module.substr(0, 40), "'"));
      }
      module = module.substr(1, module.size() - 2);
    }
    result.symbols_.push_back({addr, std::string(fields[2]), std::string(module)});
  }
  if (!any_nonzero) {
    return absl::PermissionDeniedError("kallsyms addresses are all zero: kernel.kptr_restrict hides them; run as root");
  }
  std::stable_sort(result.symbols_.begin(), result.symbols_.end(),
                   [](const Symbol& a, const Symbol& b) { return a.addr < b.addr; });
  return result;
}

absl::StatusOr<KernelSymbols> KernelSymbols::LoadFromProc(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  return Parse(*text);
}

std::optional<uint64_t> KernelSymbols::TextBase(absl::string_view module) const {
  if (module.empty()) {
    std::optional<uint64_t> text;
    for (const Symbol& s : symbols_) {
      if (!s.module.empty()) continue;
      if (s.name == "_stext") return s.addr;
      if (s.name == "_text") text = s.addr;
    }
    return text;
  }
  for (const Symbol& s : symbols_) {  // sorted: the first is the lowest
    if (s.module == module) return s.addr;
  }
  return std::nullopt;
}

std::vector<std::pair<uint64_t, std::string>> KernelSymbols::OffsetsOf(absl::string_view module) const {
  std::vector<std::pair<uint64_t, std::string>> result;
  std::optional<uint64_t> base = TextBase(module);
  if (!base) return result;
  for (const Symbol& s : symbols_) {
    if (s.module == module && s.addr >= *base) result.emplace_back(s.addr - *base, s.name);
  }
  return result;
}

KernelSymbols KernelSymbols::FromOffsets(const std::vector<std::pair<uint64_t, std::string>>& symbols) {
  KernelSymbols result;
  for (const auto& [offset, name] : symbols) result.symbols_.push_back({offset, name, ""});
  std::stable_sort(result.symbols_.begin(), result.symbols_.end(),
                   [](const Symbol& a, const Symbol& b) { return a.addr < b.addr; });
  return result;
}

std::optional<ResolvedSymbol> KernelSymbols::Resolve(uint64_t addr) const {
  auto it =
      std::upper_bound(symbols_.begin(), symbols_.end(), addr, [](uint64_t a, const Symbol& s) { return a < s.addr; });
  if (it == symbols_.begin()) return std::nullopt;
  --it;
  return ResolvedSymbol{it->name, it->module, addr - it->addr};
}

std::string KernelSymbols::NameOf(uint64_t addr) const {
  if (auto symbol = Resolve(addr)) return std::string(symbol->name);
  return absl::StrFormat("0x%x", addr);
}

}  // namespace apq
