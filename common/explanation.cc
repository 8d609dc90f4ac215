#include "common/explanation.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace apq {
namespace {

std::string MiB(double bytes) { return absl::StrFormat("%.1f MiB", bytes / (1 << 20)); }

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
  for (const auto& [field, bytes] : b.visible) {
    apq::v1::MeminfoField* visible = e.add_visible();
    visible->set_name(field);
    visible->set_bytes(bytes);
  }
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
  for (const apq::v1::MeminfoField& field : host.visible()) {
    AddNamed(sum->mutable_visible(), field.name(), field.bytes(), [](auto* f) { return f->mutable_name(); });
  }
  sum->set_visible_bytes(sum->visible_bytes() + host.visible_bytes());
  sum->set_hidden_traced_bytes(sum->hidden_traced_bytes() + host.hidden_traced_bytes());
  sum->set_hidden_traced_standard_error(std::hypot(sum->hidden_traced_standard_error(), host.hidden_traced_standard_error()));
  sum->set_hidden_untraced_bytes(sum->hidden_untraced_bytes() + host.hidden_untraced_bytes());
  for (const apq::v1::UntracedPart& part : host.hidden_untraced_parts()) {
    AddNamed(sum->mutable_hidden_untraced_parts(), part.what(), part.bytes(), [](auto* p) { return p->mutable_what(); });
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
  if (first || host.oldest_classification_unix_millis() < sum->oldest_classification_unix_millis()) {
    sum->set_oldest_classification_unix_millis(host.oldest_classification_unix_millis());
  }
}

std::string FormatExplanationTable(const apq::v1::Explanation& e) {
  std::string out = absl::StrFormat("apq explain  %s  mode=%s", Scope(e), e.mode());
  if (e.oldest_classification_unix_millis() != 0) {
    absl::StrAppend(&out, "  classified at ",
                    absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixMillis(e.oldest_classification_unix_millis()),
                                     absl::UTCTimeZone()),
                    e.host().empty() && e.hosts() > 1 ? " or later" : "");
  }
  std::vector<std::string> fields;
  for (const apq::v1::MeminfoField& field : e.visible()) {
    if (field.bytes()) fields.push_back(absl::StrCat(field.name(), " ", MiB(static_cast<double>(field.bytes()))));
  }
  absl::StrAppendFormat(&out, "\nMemTotal %s\n  = MemFree %s\n  + visible in meminfo %s: %s",
                        MiB(static_cast<double>(e.mem_total_bytes())), MiB(static_cast<double>(e.mem_free_bytes())),
                        MiB(static_cast<double>(e.visible_bytes())), absl::StrJoin(fields, ", "));
  absl::StrAppendFormat(&out, "\n  + hidden, traced %s", MiB(e.hidden_traced_bytes()));
  if (e.hidden_traced_standard_error() > 0) absl::StrAppendFormat(&out, " (+- %s)", MiB(e.hidden_traced_standard_error()));
  absl::StrAppendFormat(&out, " (by path below)\n  + hidden, not traced %s\n", MiB(e.hidden_untraced_bytes()));
  for (int i = 0; i < e.hidden_untraced_parts_size(); ++i) {
    absl::StrAppendFormat(&out, "      %s: %s\n", e.hidden_untraced_parts(i).what(), MiB(e.hidden_untraced_parts(i).bytes()));
    if (i != 0) continue;  // the holders found at start are within the first part
    for (const apq::v1::StartHolder& holder : e.held_at_start_holders()) {
      absl::StrAppend(&out, "        held then by ", DescribeStartHolder(holder), "\n");
    }
  }
  if (e.traced_unknown_class_bytes() > 0) {
    absl::StrAppendFormat(&out, "  traced pages of unknown class (stack lost or owner table full), in neither term: %s\n",
                          MiB(e.traced_unknown_class_bytes()));
  }
  absl::StrAppend(&out, "why it does not close exactly: ", absl::StrJoin(e.notes(), "; "), "\n");
  absl::StrAppend(&out, "hidden, traced, by path:\n");
  for (const apq::v1::ExplainedPath& p : e.paths()) {
    std::vector<std::string> leaf_first(p.frames().rbegin(), p.frames().rend());
    absl::StrAppendFormat(&out, "%12s  %s\n", MiB(p.bytes()), absl::StrJoin(leaf_first, " <- "));
    for (const apq::v1::PathHolder& h : p.holders()) {
      absl::StrAppendFormat(&out, "%12s    %spid %d %s  %s\n", MiB(h.bytes()),
                            h.host().empty() ? "" : absl::StrCat("host ", h.host(), " "), h.tgid(), h.comm(), h.cgroup());
    }
  }
  return out;
}

std::string FormatExplanationJson(const apq::v1::Explanation& e) {
  nlohmann::json j;
  if (!e.host().empty()) j["host"] = e.host();
  j["hosts"] = e.hosts();
  j["mode"] = e.mode();
  j["mem_total_bytes"] = e.mem_total_bytes();
  j["mem_free_bytes"] = e.mem_free_bytes();
  nlohmann::json visible = nlohmann::json::object();
  for (const apq::v1::MeminfoField& field : e.visible()) visible[field.name()] = field.bytes();
  j["visible"] = visible;
  j["visible_bytes"] = e.visible_bytes();
  j["hidden_traced_bytes"] = e.hidden_traced_bytes();
  j["hidden_traced_standard_error"] = e.hidden_traced_standard_error();
  j["hidden_untraced_bytes"] = e.hidden_untraced_bytes();
  nlohmann::json parts = nlohmann::json::array();
  for (const apq::v1::UntracedPart& part : e.hidden_untraced_parts()) {
    parts.push_back({{"what", part.what()}, {"bytes", part.bytes()}});
  }
  j["hidden_untraced_parts"] = parts;
  nlohmann::json holders = nlohmann::json::array();
  for (const apq::v1::StartHolder& holder : e.held_at_start_holders()) holders.push_back(StartHolderJson(holder));
  j["held_at_start_holders"] = holders;
  j["traced_unknown_class_bytes"] = e.traced_unknown_class_bytes();
  j["notes"] = std::vector<std::string>(e.notes().begin(), e.notes().end());
  if (e.oldest_classification_unix_millis() != 0) j["classified_unix_millis"] = e.oldest_classification_unix_millis();
  nlohmann::json paths = nlohmann::json::array();
  for (const apq::v1::ExplainedPath& p : e.paths()) {
    nlohmann::json processes = nlohmann::json::array();
    for (const apq::v1::PathHolder& h : p.holders()) {
      nlohmann::json holder = {{"tgid", h.tgid()}, {"comm", h.comm()}, {"cgroup", h.cgroup()}, {"bytes", h.bytes()}};
      if (!h.host().empty()) holder["host"] = h.host();
      processes.push_back(holder);
    }
    paths.push_back({{"frames", std::vector<std::string>(p.frames().begin(), p.frames().end())},
                     {"bytes", p.bytes()},
                     {"standard_error", p.standard_error()},
                     {"processes", processes}});
  }
  j["paths"] = paths;
  return j.dump() + "\n";
}

std::string DescribeStartHolder(const apq::v1::StartHolder& h) {
  return absl::StrFormat("pid %d %s%s: %s %s in %d", h.tgid(), h.comm(),
                         h.host().empty() ? "" : absl::StrCat(" (host ", h.host(), ")"), h.kind(),
                         MiB(static_cast<double>(h.bytes())), h.objects());
}

nlohmann::json StartHolderJson(const apq::v1::StartHolder& h) {
  nlohmann::json j = {{"kind", h.kind()}, {"tgid", h.tgid()}, {"comm", h.comm()}, {"bytes", h.bytes()},
                      {"objects", h.objects()}};
  if (!h.host().empty()) j["host"] = h.host();
  return j;
}

}  // namespace apq
