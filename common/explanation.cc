#include "common/explanation.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/display.h"
#include "nlohmann/json.hpp"

namespace apq {
namespace {

std::string MiB(double bytes) { return ShownBytes(bytes, TableStyle{}); }

// Adds `bytes` to the entry whose name (name_of(entry)) is `name`, appending
// it if new: entries keep the order in which they first appeared.
template <typename Entries, typename NameOf, typename Bytes>
void AddNamed(Entries* entries, const std::string& name, Bytes bytes, NameOf name_of) {
  for (auto& entry : *entries) {
    if (*name_of(&entry) == name) {
      entry.set_bytes(entry.bytes() + bytes);
      return;
    }
  }
  auto* added = entries->Add();
  *name_of(added) = name;
  added->set_bytes(bytes);
}

std::string Scope(const apq::v1::Explanation& e) {
  if (!e.host().empty()) return absl::StrCat("host ", e.host());
  return e.hosts() == 1 ? "1 host" : absl::StrCat(e.hosts(), " hosts");
}

}  // namespace

apq::v1::Explanation ExplanationOf(const MeminfoBalance& b) {
  apq::v1::Explanation e;
  e.set_hosts(1);
  e.set_mem_total_bytes(b.mem_total);
  e.set_mem_free_bytes(b.mem_free);
  for (const auto& [field, bytes] : b.visible) (*e.mutable_visible())[field] = bytes;
  e.set_visible_bytes(b.visible_sum);
  e.set_hidden_traced_bytes(b.hidden_traced);
  e.set_hidden_untraced_bytes(b.hidden_untraced);
  for (const auto& [what, bytes] : b.untraced_parts) {
    apq::v1::UntracedPart* part = e.add_hidden_untraced_parts();
    part->set_what(what);
    part->set_bytes(bytes);
  }
  for (const std::string& note : b.notes) e.add_notes(note);
  return e;
}

void AddTerms(const apq::v1::Explanation& host, apq::v1::Explanation* sum) {
  const bool first = sum->hosts() == 0;
  sum->set_hosts(sum->hosts() + host.hosts());
  sum->set_mode(first || sum->mode() == host.mode() ? host.mode() : "mixed");
  sum->set_mem_total_bytes(sum->mem_total_bytes() + host.mem_total_bytes());
  sum->set_mem_free_bytes(sum->mem_free_bytes() + host.mem_free_bytes());
  for (const auto& [field, bytes] : host.visible()) (*sum->mutable_visible())[field] += bytes;
  sum->set_visible_bytes(sum->visible_bytes() + host.visible_bytes());
  sum->set_hidden_traced_bytes(sum->hidden_traced_bytes() + host.hidden_traced_bytes());
  sum->set_hidden_traced_standard_error(
      std::hypot(sum->hidden_traced_standard_error(), host.hidden_traced_standard_error()));
  sum->set_hidden_untraced_bytes(sum->hidden_untraced_bytes() + host.hidden_untraced_bytes());
  for (const apq::v1::UntracedPart& part : host.hidden_untraced_parts()) {
    AddNamed(sum->mutable_hidden_untraced_parts(), part.what(), part.bytes(),
             [](auto* p) { return p->mutable_what(); });
  }
  sum->set_traced_unknown_class_bytes(sum->traced_unknown_class_bytes() + host.traced_unknown_class_bytes());
  for (const std::string& note : host.notes()) {
    if (std::find(sum->notes().begin(), sum->notes().end(), note) == sum->notes().end()) sum->add_notes(note);
  }
  for (const apq::v1::StartHolder& holder : host.held_at_start_holders()) {
    apq::v1::StartHolder* added = sum->add_held_at_start_holders();
    *added = holder;
    if (added->host().empty()) added->set_host(host.host());
  }
  if (first || host.classified_unix_millis() < sum->classified_unix_millis()) {
    sum->set_classified_unix_millis(host.classified_unix_millis());
  }
}

std::string FormatExplanationTable(const apq::v1::Explanation& e) {
  std::string out = absl::StrFormat("apq explain  %s  mode=%s", Scope(e), e.mode());
  if (e.classified_unix_millis() != 0) {
    absl::StrAppend(&out, "  classified at ", Timestamp(e.classified_unix_millis()),
                    e.host().empty() && e.hosts() > 1 ? " or later" : "");
  }
  // Largest first (a map has no order of its own).
  std::vector<std::pair<std::string, uint64_t>> visible(e.visible().begin(), e.visible().end());
  std::sort(visible.begin(), visible.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  std::vector<std::string> fields;
  for (const auto& [field, bytes] : visible) {
    if (bytes) fields.push_back(absl::StrCat(field, " ", MiB(static_cast<double>(bytes))));
  }
  absl::StrAppendFormat(&out, "\nMemTotal %s\n  = MemFree %s\n  + visible in meminfo %s: %s",
                        MiB(static_cast<double>(e.mem_total_bytes())), MiB(static_cast<double>(e.mem_free_bytes())),
                        MiB(static_cast<double>(e.visible_bytes())), absl::StrJoin(fields, ", "));
  absl::StrAppendFormat(&out, "\n  + hidden, traced %s", MiB(e.hidden_traced_bytes()));
  if (e.hidden_traced_standard_error() > 0)
    absl::StrAppendFormat(&out, " (+- %s)", MiB(e.hidden_traced_standard_error()));
  absl::StrAppendFormat(&out, " (by path below)\n  + hidden, not traced %s\n", MiB(e.hidden_untraced_bytes()));
  for (int i = 0; i < e.hidden_untraced_parts_size(); ++i) {
    absl::StrAppendFormat(&out, "      %s: %s\n", e.hidden_untraced_parts(i).what(),
                          MiB(e.hidden_untraced_parts(i).bytes()));
    if (i != 0) continue;  // the holders found at start are within the first part
    for (const apq::v1::StartHolder& holder : e.held_at_start_holders()) {
      absl::StrAppend(&out, "        held then by ", DescribeStartHolder(holder), "\n");
    }
  }
  if (e.traced_unknown_class_bytes() > 0) {
    absl::StrAppendFormat(&out,
                          "  traced pages of unknown class (stack lost or owner table full), in neither term: %s\n",
                          MiB(e.traced_unknown_class_bytes()));
  }
  absl::StrAppend(&out, "why it does not close exactly: ", absl::StrJoin(e.notes(), "; "), "\n");
  absl::StrAppend(&out, "hidden, traced, by path:\n");
  for (const apq::v1::ExplainedPath& p : e.paths()) {
    std::vector<std::string> leaf_first(p.frames().rbegin(), p.frames().rend());
    absl::StrAppendFormat(&out, "%12s  %s\n", MiB(p.bytes()), absl::StrJoin(leaf_first, " <- "));
    for (const apq::v1::PathHolder& h : p.processes()) {
      absl::StrAppendFormat(&out, "%12s    %spid %d %s  %s\n", MiB(h.bytes()),
                            h.host().empty() ? "" : absl::StrCat("host ", h.host(), " "), h.tgid(), h.comm(),
                            h.cgroup());
    }
  }
  return out;
}

std::string DescribeStartHolder(const apq::v1::StartHolder& h) {
  return absl::StrFormat("pid %d %s%s: %s %s in %d", h.tgid(), h.comm(),
                         h.host().empty() ? "" : absl::StrCat(" (host ", h.host(), ")"), h.kind(),
                         MiB(static_cast<double>(h.bytes())), h.objects());
}

nlohmann::json StartHolderJson(const apq::v1::StartHolder& h) {
  nlohmann::json j = {
      {"kind", h.kind()}, {"tgid", h.tgid()}, {"comm", h.comm()}, {"bytes", h.bytes()}, {"objects", h.objects()}};
  if (!h.host().empty()) j["host"] = h.host();
  return j;
}

}  // namespace apq
