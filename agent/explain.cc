#include "agent/explain.h"

#include <cmath>

#include "common/explanation.h"

namespace apq {

apq::v1::Explanation ExplainLocally(const MeminfoBalance& balance, const Report& hidden) {
  apq::v1::Explanation e = ExplanationOf(balance);
  e.set_mode(hidden.sample_bytes == 0 ? "exact" : "sampled");
  for (const PathStats& p : hidden.paths) {
    apq::v1::ExplainedPath* path = e.add_paths();
    for (const std::string& frame : p.frames) path->add_frames(frame);
    path->set_bytes(p.bytes_outstanding);
    path->set_standard_error(p.standard_error());
    for (const ProcessShare& s : p.processes) {
      apq::v1::PathHolder* holder = path->add_processes();
      holder->set_tgid(static_cast<uint32_t>(s.tgid));
      holder->set_comm(s.comm);
      holder->set_cgroup(s.cgroup);
      holder->set_bytes(s.bytes);
    }
  }
  e.set_hidden_traced_standard_error(std::sqrt(hidden.class_variance[apq::v1::PAGE_CLASS_HIDDEN]));
  e.set_traced_unknown_class_bytes(hidden.class_bytes[apq::v1::PAGE_CLASS_UNKNOWN]);
  for (const apq::v1::StartHolder& holder : hidden.held_at_start_holders) *e.add_held_at_start_holders() = holder;
  if (!hidden.held_at_start_holders_unavailable.empty()) {
    e.add_notes("holders of pipes and sockets at start not found: " + hidden.held_at_start_holders_unavailable);
  }
  return e;
}

}  // namespace apq
