#include "agent/explain.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

namespace apq {
namespace {

std::string MiB(double bytes) { return absl::StrFormat("%.1f MiB", bytes / (1 << 20)); }

double UnknownClassBytes(const Report& r) { return r.class_bytes[apq::v1::PAGE_CLASS_UNKNOWN]; }

}  // namespace

std::string FormatExplainTable(const MeminfoBalance& b, const Report& hidden) {
  std::string out = absl::StrFormat("apq explain  mode=%s  tracing %.1f s\n", hidden.mode(), hidden.seconds_tracing);
  std::vector<std::string> fields;
  for (const auto& [field, bytes] : b.visible) {
    if (bytes) fields.push_back(absl::StrCat(field, " ", MiB(bytes)));
  }
  absl::StrAppendFormat(&out, "MemTotal %s\n  = MemFree %s\n  + visible in meminfo %s: %s", MiB(b.mem_total),
                        MiB(b.mem_free), MiB(b.visible_sum), absl::StrJoin(fields, ", "));
  absl::StrAppendFormat(&out, "\n  + hidden, traced %s (by path below)\n  + hidden, not traced %s\n", MiB(b.hidden_traced),
                        MiB(b.hidden_untraced));
  for (const auto& [what, bytes] : b.untraced_parts) absl::StrAppendFormat(&out, "      %s: %s\n", what, MiB(bytes));
  if (UnknownClassBytes(hidden) > 0) {
    absl::StrAppendFormat(&out, "  traced pages of unknown class (stack lost or owner table full), in neither term: %s\n",
                          MiB(UnknownClassBytes(hidden)));
  }
  absl::StrAppend(&out, "why it does not close exactly: ", absl::StrJoin(b.notes, "; "), "\n");
  absl::StrAppend(&out, "hidden, traced, by path:\n");
  for (const PathStats& p : hidden.paths) {
    std::vector<std::string> leaf_first(p.frames.rbegin(), p.frames.rend());
    absl::StrAppendFormat(&out, "%12s  %s\n", MiB(p.bytes_outstanding), absl::StrJoin(leaf_first, " <- "));
    for (const ProcessShare& s : p.processes) {
      absl::StrAppendFormat(&out, "%12s    pid %d %s  %s\n", MiB(s.bytes), s.tgid, s.comm, s.cgroup);
    }
  }
  return out;
}

std::string FormatExplainJson(const MeminfoBalance& b, const Report& hidden) {
  nlohmann::json j;
  j["mode"] = hidden.sample_bytes == 0 ? "exact" : "sampled";
  j["mem_total_bytes"] = b.mem_total;
  j["mem_free_bytes"] = b.mem_free;
  nlohmann::json visible = nlohmann::json::object();
  for (const auto& [field, bytes] : b.visible) visible[field] = bytes;
  j["visible"] = visible;
  j["visible_bytes"] = b.visible_sum;
  j["hidden_traced_bytes"] = b.hidden_traced;
  j["hidden_untraced_bytes"] = b.hidden_untraced;
  nlohmann::json parts = nlohmann::json::array();
  for (const auto& [what, bytes] : b.untraced_parts) parts.push_back({{"what", what}, {"bytes", bytes}});
  j["hidden_untraced_parts"] = parts;
  j["traced_unknown_class_bytes"] = UnknownClassBytes(hidden);
  j["notes"] = b.notes;
  nlohmann::json paths = nlohmann::json::array();
  for (const PathStats& p : hidden.paths) {
    nlohmann::json processes = nlohmann::json::array();
    for (const ProcessShare& s : p.processes) {
      processes.push_back({{"tgid", s.tgid}, {"comm", s.comm}, {"cgroup", s.cgroup}, {"bytes", s.bytes}});
    }
    paths.push_back({{"frames", p.frames}, {"bytes", p.bytes_outstanding}, {"standard_error", p.standard_error()},
                     {"processes", processes}});
  }
  j["paths"] = paths;
  return j.dump() + "\n";
}

}  // namespace apq
