// The store's reading methods: what the queries read from the file, on the
// reading connection (never waiting for a commit).
#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "aggregator/store.h"
#include "common/status_macros.h"

namespace apq {

absl::StatusOr<std::vector<Store::HostRow>> Store::Hosts(const std::string& cluster) {
  APQ_ASSIGN_OR_RETURN(
      Statement query,
      reader_.Prepare("SELECT h.name, e.kernel_release, e.build_id, e.last_report_ms, e.sample_bytes, e.losses, "
                      "e.coverage, e.memory FROM epochs e JOIN hosts h USING (host_id) WHERE h.cluster = ?1 "
                      "AND e.epoch_id = (SELECT max(epoch_id) FROM epochs WHERE host_id = e.host_id) ORDER BY h.name"));
  query.Bind(1, cluster);
  std::vector<HostRow> rows;
  APQ_RETURN_IF_ERROR(query.ForEachRow([&] {
    rows.push_back({query.Text(0), query.Text(1), query.Text(2), query.Int(3), static_cast<uint64_t>(query.Int(4)),
                    query.Text(5), query.Text(6), query.IsNull(7) ? "" : query.Text(7)});
    return absl::OkStatus();
  }));
  return rows;
}

absl::StatusOr<std::vector<Store::ClusterRow>> Store::Clusters(int64_t reporting_since_ms) {
  APQ_ASSIGN_OR_RETURN(
      Statement query,
      reader_.Prepare("SELECT h.cluster, count(*), sum(coalesce(n.newest, 0) >= ?1), max(coalesce(n.newest, 0)) "
                      "FROM hosts h LEFT JOIN (SELECT host_id, max(last_report_ms) AS newest FROM epochs "
                      "GROUP BY host_id) n USING (host_id) GROUP BY h.cluster ORDER BY h.cluster"));
  query.Bind(1, reporting_since_ms);
  std::vector<ClusterRow> rows;
  APQ_RETURN_IF_ERROR(query.ForEachRow([&] {
    rows.push_back(
        {query.Text(0), static_cast<uint32_t>(query.Int(1)), static_cast<uint32_t>(query.Int(2)), query.Int(3)});
    return absl::OkStatus();
  }));
  return rows;
}

absl::StatusOr<std::optional<apq::v1::SymbolTable>> Store::ReadSymbolTable(const SymbolTableKey& key) {
  APQ_ASSIGN_OR_RETURN(Statement query, reader_.Prepare("SELECT symbols FROM cluster_symbol_tables "
                                                        "WHERE cluster = ?1 AND object = ?2 AND build_id = ?3"));
  query.Bind(1, key.cluster).Bind(2, key.object).BindBlob(3, key.build_id);
  APQ_ASSIGN_OR_RETURN(bool row, query.Step());
  if (!row) return std::nullopt;
  apq::v1::SymbolTable table;
  if (!table.ParseFromString(query.Text(0))) {
    return absl::DataLossError(
        absl::StrCat("stored symbol table of ", key.object, " for cluster ", key.cluster, " does not parse"));
  }
  return table;
}

namespace {

// The SQL expression history's rows are grouped by (p: paths, c: cluster or
// host rows, n: hosts). History keeps no processes or cgroups.
absl::StatusOr<std::string> HistoryGroupKey(apq::v1::GroupBy by) {
  switch (by) {
    case apq::v1::GROUP_BY_STACK:
      return "p.folded";
    case apq::v1::GROUP_BY_FUNCTION:
      return "p.leaf";
    case apq::v1::GROUP_BY_BUILD:
      return "lower(hex(c.build_id))";
    case apq::v1::GROUP_BY_HOST:
      return "n.name";
    default:
      return absl::InvalidArgumentError(
          "history keeps paths, functions, builds and hosts; --by process and --by cgroup answer only for now");
  }
}

}  // namespace

absl::StatusOr<Store::HistoryTop> Store::TopFromHistory(const HistoryQuery& request, int64_t now_millis) {
  const apq::v1::GroupBy by = request.group_by;
  const int64_t at = request.at_ms != 0 ? request.at_ms : now_millis;
  const int64_t since = request.since_ms;
  if (at < 0 || since < 0) return absl::InvalidArgumentError("times must be after 1970");
  if (since != 0 && since > at) return absl::InvalidArgumentError("--since is after --at");
  if (at > now_millis + kMinuteMillis) return absl::InvalidArgumentError("--at is in the future");
  const bool range = since != 0;
  const int64_t minute_horizon = FloorDiv(now_millis - retention_.minute_millis, kMinuteMillis) + 1;

  APQ_ASSIGN_OR_RETURN(const std::string key, HistoryGroupKey(by));
  const std::string filters = "AND (length(?4) = 0 OR c.build_id = ?4) AND (?5 = '' OR instr(p.folded, ?5) > 0) ";
  // Each group's value per sample, then its largest over the samples (one
  // sample for "at"); the bare columns come from that largest row.
  if (by == apq::v1::GROUP_BY_HOST || !request.host.empty()) {
    const int64_t first = FloorDiv(range ? since : at, kHourMillis), last = FloorDiv(at, kHourMillis);
    const char* value = range ? "c.peak_bytes" : "c.bytes";
    const char* variance = range ? "c.peak_variance" : "c.variance";
    return HistoryRows(
        request,
        absl::StrCat("SELECT key, max(b), v, h, t FROM (SELECT c.hour t, ", key, " key, sum(", value, ") b, sum(",
                     variance, ") v, count(DISTINCT c.host_id) h ",
                     "FROM host_hours c JOIN hosts n USING (host_id) JOIN paths p USING (path_id) "
                     "WHERE c.hour BETWEEN ?1 AND ?2 AND n.cluster = ?3 AND (?7 = '' OR n.name = ?7) ",
                     filters, "GROUP BY c.hour, key) GROUP BY key HAVING max(b) > 0 ORDER BY 2 DESC, 1 LIMIT ?6"),
        first, last, kHourMillis, 0);
  }
  int64_t first = FloorDiv(since, kMinuteMillis), last = FloorDiv(at, kMinuteMillis);
  if (!range) {  // the newest sample at or before "at"
    absl::StatusOr<Statement> newest =
        reader_.Prepare("SELECT max(minute) FROM cluster_samples WHERE cluster = ?1 AND minute <= ?2");
    if (!newest.ok()) return newest.status();
    newest->Bind(1, request.cluster).Bind(2, last);
    absl::StatusOr<bool> row = newest->Step();
    if (!row.ok()) return row.status();
    if (newest->IsNull(0)) return HistoryTop();  // no sample yet
    first = last = newest->Int(0);
  }
  const bool minutes = first >= minute_horizon;
  const int64_t unit = minutes ? kMinuteMillis : kHourMillis;
  if (!minutes) {
    first = FloorDiv(first * kMinuteMillis, kHourMillis);
    last = FloorDiv(last * kMinuteMillis, kHourMillis);
  }
  absl::StatusOr<Statement> hosts =
      reader_.Prepare("SELECT max(hosts) FROM cluster_samples WHERE cluster = ?1 AND minute BETWEEN ?2 AND ?3");
  if (!hosts.ok()) return hosts.status();
  hosts->Bind(1, request.cluster).Bind(2, first * unit / kMinuteMillis).Bind(3, (last + 1) * unit / kMinuteMillis - 1);
  absl::StatusOr<bool> row = hosts->Step();
  if (!row.ok()) return row.status();
  const auto hosts_sampled = static_cast<uint32_t>(hosts->Int(0));
  const char* table = minutes ? "cluster_minutes" : "cluster_hours";
  const char* time = minutes ? "minute" : "hour";
  const char* value = !minutes && range ? "peak_" : "";
  return HistoryRows(
      request,
      absl::StrCat(
          "SELECT key, max(b), v, h, t FROM (SELECT t, key, sum(b) b, sum(v) v, sum(h) h FROM (SELECT c.", time, " t, ",
          key, " key, c.build_id, sum(c.", value, "bytes) b, sum(c.", value, "variance) v, max(c.", value,
          "hosts) h FROM ", table, " c JOIN paths p USING (path_id) WHERE c.", time,
          " BETWEEN ?1 AND ?2 AND c.cluster = ?3 ", filters,
          "GROUP BY t, key, c.build_id) GROUP BY t, key) GROUP BY key HAVING max(b) > 0 ORDER BY 2 DESC, 1 LIMIT ?6"),
      first, last, unit, hosts_sampled);
}

absl::StatusOr<DiffSide> Store::HistoryForDiff(const std::string& cluster, const apq::v1::DiffSelector& selector,
                                               apq::v1::GroupBy by, int64_t now_millis, int64_t* resolution_millis) {
  const std::string& prefix = selector.build_hex_prefix();
  if (prefix.size() > 80 || !std::all_of(prefix.begin(), prefix.end(),
                                         [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); })) {
    return absl::InvalidArgumentError("build= takes lower-case hex");
  }
  const bool point = selector.from_unix_millis() == selector.to_unix_millis();
  const int64_t to = selector.to_unix_millis() != 0 ? selector.to_unix_millis() : now_millis;
  const int64_t from = point ? to : selector.from_unix_millis();
  if (from < 0 || from > to) return absl::InvalidArgumentError("a time range must run forwards, after 1970");
  // Per host (host= or --by host): the hourly host rows; else the cluster rows.
  const bool per_host = !selector.host().empty() || by == apq::v1::GROUP_BY_HOST;
  const int64_t minute_horizon = FloorDiv(now_millis - retention_.minute_millis, kMinuteMillis) + 1;
  const bool minutes = !per_host && FloorDiv(from, kMinuteMillis) >= minute_horizon;
  const int64_t unit = minutes ? kMinuteMillis : kHourMillis;
  *resolution_millis = unit;
  APQ_ASSIGN_OR_RETURN(const std::string key, HistoryGroupKey(by));
  const char* time = per_host ? "c.hour" : minutes ? "c.minute" : "c.hour";
  const std::string from_clause = per_host ? "host_hours c JOIN hosts n USING (host_id)"
                                           : absl::StrCat(minutes ? "cluster_minutes" : "cluster_hours", " c");
  const std::string where =
      absl::StrCat(per_host ? "n.cluster = ?1" : "c.cluster = ?1", " AND ", time, " BETWEEN ?2 AND ?3 ",
                   "AND (?4 = '' OR lower(hex(c.build_id)) LIKE ?4 || '%') ",
                   "AND (?5 = '' OR c.build_id IN (SELECT build_id FROM epochs WHERE kernel_release = ?5)) ",
                   per_host ? "AND (?6 = '' OR n.name = ?6) " : "");
  auto bind = [&](Statement& statement, int64_t first, int64_t last) {
    statement.Bind(1, cluster).Bind(2, first).Bind(3, last).Bind(4, prefix).Bind(5, selector.release());
    if (per_host) statement.Bind(6, selector.host());
  };
  // The cohort: per sample, the hosts the selector takes (a host of the
  // cluster rows is counted by the most hosts any path of its build has).
  const std::string cohort_sql =
      per_host ? absl::StrCat("SELECT ", time, ", count(DISTINCT c.host_id) FROM ", from_clause, " WHERE ", where,
                              "GROUP BY 1")
               : absl::StrCat("SELECT t, sum(h) FROM (SELECT ", time, " t, c.build_id, max(c.hosts) h FROM ",
                              from_clause, " WHERE ", where, "GROUP BY 1, 2) GROUP BY t");
  int64_t first = FloorDiv(from, unit), last = FloorDiv(to, unit);
  // An hourly row holds the hour's last sample: the hour of a past time
  // holds later samples, so "at or before" takes the hour before it.
  if (point && !minutes && to < now_millis - kMinuteMillis) --last;
  if (point) {  // the newest sample at or before (with hosts): one lookup, not a scan of the past
    APQ_ASSIGN_OR_RETURN(Statement newest,
                         reader_.Prepare(absl::StrCat("SELECT max(", time, ") FROM ", from_clause, " WHERE ", where,
                                                      per_host ? "" : "AND c.hosts > 0")));
    bind(newest, 0, last);
    APQ_ASSIGN_OR_RETURN(bool row, newest.Step());
    if (!row || newest.IsNull(0)) return DiffSide();
    first = last = newest.Int(0);
  }
  APQ_ASSIGN_OR_RETURN(Statement cohort, reader_.Prepare(cohort_sql));
  bind(cohort, first, last);
  DiffSide side;
  APQ_RETURN_IF_ERROR(cohort.ForEachRow([&] {
    if (cohort.Int(1) > 0) side.cohort[cohort.Int(0)] = static_cast<uint32_t>(cohort.Int(1));
    return absl::OkStatus();
  }));
  if (side.cohort.empty()) return side;
  const std::string cells_sql =
      per_host ? absl::StrCat("SELECT ", time, ", ", key, ", sum(c.bytes), sum(c.variance), count(DISTINCT c.host_id) ",
                              "FROM ", from_clause, " JOIN paths p USING (path_id) WHERE ", where, "GROUP BY 1, 2")
               : absl::StrCat("SELECT t, k, sum(b), sum(v), sum(h) FROM (SELECT ", time, " t, ", key,
                              " k, c.build_id, sum(c.bytes) b, sum(c.variance) v, max(c.hosts) h FROM ", from_clause,
                              " JOIN paths p USING (path_id) WHERE ", where, "GROUP BY 1, 2, 3) GROUP BY t, k");
  APQ_ASSIGN_OR_RETURN(Statement cells, reader_.Prepare(cells_sql));
  bind(cells, first, last);
  APQ_RETURN_IF_ERROR(cells.ForEachRow([&] {
    side.cells.push_back(
        {cells.Int(0), cells.Text(1), cells.Double(2), cells.Double(3), static_cast<uint32_t>(cells.Int(4))});
    return absl::OkStatus();
  }));
  return side;
}

absl::StatusOr<Store::HistoryTop> Store::HistoryRows(const HistoryQuery& request, const std::string& sql, int64_t first,
                                                     int64_t last, int64_t unit_millis, uint32_t hosts_sampled) {
  APQ_ASSIGN_OR_RETURN(Statement query, reader_.Prepare(sql));
  query.Bind(1, first)
      .Bind(2, last)
      .Bind(3, request.cluster)
      .BindBlob(4, request.build_id)
      .Bind(5, request.frame)
      .Bind(6, request.top == 0 ? int64_t{-1} : static_cast<int64_t>(request.top));
  if (query.Parameters() >= 7) query.Bind(7, request.host);
  HistoryTop top;
  APQ_RETURN_IF_ERROR(query.ForEachRow([&] {
    top.rows.push_back(
        {query.Text(0), query.Double(1), std::max(0.0, query.Double(2)), static_cast<uint32_t>(query.Int(3))});
    top.hosts_selected = std::max(top.hosts_selected, top.rows.back().hosts);
    return absl::OkStatus();
  }));
  if (hosts_sampled) top.hosts_selected = hosts_sampled;
  top.first_ms = first * unit_millis;
  top.last_ms = last * unit_millis;
  top.resolution_ms = unit_millis;
  return top;
}

}  // namespace apq
