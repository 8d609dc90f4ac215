#include "aggregator/store_sqlite.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace apq {

absl::Status Statement::Check(int rc, const char* what) const {
  if (rc == SQLITE_OK || rc == SQLITE_ROW || rc == SQLITE_DONE) return absl::OkStatus();
  std::string message = absl::StrCat(
      "sqlite ", what, " of '", absl::string_view(sqlite3_sql(stmt_.get())).substr(0, 80), "': ", sqlite3_errmsg(db_));
  return rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? absl::UnavailableError(message) : absl::InternalError(message);
}

Statement& Statement::Bind(int index, int64_t value) {
  if (bind_status_.ok()) bind_status_ = Check(sqlite3_bind_int64(stmt_.get(), index, value), "bind");
  return *this;
}

Statement& Statement::Bind(int index, double value) {
  if (bind_status_.ok()) bind_status_ = Check(sqlite3_bind_double(stmt_.get(), index, value), "bind");
  return *this;
}

Statement& Statement::Bind(int index, absl::string_view text) {
  if (bind_status_.ok()) {
    bind_status_ =
        Check(sqlite3_bind_text64(stmt_.get(), index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8), "bind");
  }
  return *this;
}

Statement& Statement::BindNull(int index) {
  if (bind_status_.ok()) bind_status_ = Check(sqlite3_bind_null(stmt_.get(), index), "bind");
  return *this;
}

Statement& Statement::BindBlob(int index, absl::string_view bytes) {
  if (bind_status_.ok()) {
    bind_status_ = Check(sqlite3_bind_blob64(stmt_.get(), index, bytes.data(), bytes.size(), SQLITE_TRANSIENT), "bind");
  }
  return *this;
}

absl::StatusOr<bool> Statement::Step() {
  if (!bind_status_.ok()) return bind_status_;
  int rc = sqlite3_step(stmt_.get());
  APQ_RETURN_IF_ERROR(Check(rc, "step"));
  return rc == SQLITE_ROW;
}

absl::Status Statement::Run() {
  while (true) {
    absl::StatusOr<bool> row = Step();
    if (!row.ok()) return row.status();
    if (!*row) return absl::OkStatus();
  }
}

absl::Status Statement::ForEachRow(const std::function<absl::Status()>& on_row) {
  while (true) {
    absl::StatusOr<bool> row = Step();
    if (!row.ok()) return row.status();
    if (!*row) return absl::OkStatus();
    APQ_RETURN_IF_ERROR(on_row());
  }
}

void Statement::Reset() {
  sqlite3_reset(stmt_.get());
  sqlite3_clear_bindings(stmt_.get());
  bind_status_ = absl::OkStatus();
}

std::string Statement::Text(int column) const {
  const void* data = sqlite3_column_blob(stmt_.get(), column);
  int size = sqlite3_column_bytes(stmt_.get(), column);
  return data ? std::string(static_cast<const char*>(data), static_cast<size_t>(size)) : std::string();
}

namespace {

// SQLite's own words, and why its directory cannot be written if it cannot
// ("unable to open database file" says nothing of a read-only filesystem;
// WAL mode writes files beside the database).
std::string OpenError(const std::string& path, absl::string_view sqlite_message) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  const std::filesystem::path directory = parent.empty() ? std::filesystem::path(".") : parent;
  if (access(directory.c_str(), W_OK) == 0) return std::string(sqlite_message);
  return absl::StrCat(sqlite_message, " (", directory.string(), ": ", std::strerror(errno), ")");
}

}  // namespace

absl::StatusOr<Database> Database::Open(const std::string& path) {
  sqlite3* raw = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  Database db(raw);
  if (rc != SQLITE_OK) {
    return absl::UnavailableError(
        absl::StrCat("open database ", path, ": ", OpenError(path, raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc))));
  }
  sqlite3_busy_timeout(raw, 5000);
  for (const char* pragma : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON"}) {
    if (absl::Status status = db.Exec(pragma); !status.ok()) {
      return absl::Status(status.code(), absl::StrCat("database ", path, ": ", OpenError(path, status.message())));
    }
  }
  return db;
}

absl::Status Database::Exec(absl::string_view sql) {
  char* error = nullptr;
  std::string text(sql);
  int rc = sqlite3_exec(db_.get(), text.c_str(), nullptr, nullptr, &error);
  if (rc == SQLITE_OK) return absl::OkStatus();
  std::string message = absl::StrCat("sqlite exec '", sql.substr(0, 80), "': ", error ? error : sqlite3_errstr(rc));
  sqlite3_free(error);
  return rc == SQLITE_BUSY ? absl::UnavailableError(message) : absl::InternalError(message);
}

absl::StatusOr<Statement> Database::Prepare(absl::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_.get(), sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return absl::InternalError(absl::StrCat("sqlite prepare '", sql.substr(0, 80), "': ", sqlite3_errmsg(db_.get())));
  }
  return Statement(stmt, db_.get());
}

absl::StatusOr<Transaction> Transaction::Begin(Database* db) {
  APQ_RETURN_IF_ERROR(db->Exec("BEGIN IMMEDIATE"));
  return Transaction(db);
}

Transaction::~Transaction() {
  if (db_) db_->Exec("ROLLBACK").IgnoreError();
}

absl::Status Transaction::Commit() {
  absl::Status status = db_->Exec("COMMIT");
  if (status.ok()) db_ = nullptr;
  return status;
}

}  // namespace apq
