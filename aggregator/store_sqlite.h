#ifndef APQ_AGGREGATOR_STORE_SQLITE_H_
#define APQ_AGGREGATOR_STORE_SQLITE_H_

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace apq {

// A prepared statement; values are bound by 1-based index. Every call that
// can fail returns a status naming the SQL and SQLite's message.
class Statement {
 public:
  Statement(Statement&&) = default;
  Statement& operator=(Statement&&) = default;

  Statement& Bind(int index, int64_t value);
  Statement& Bind(int index, double value);
  Statement& Bind(int index, absl::string_view text);
  Statement& BindBlob(int index, absl::string_view bytes);
  Statement& BindNull(int index);
  // Steps once: true while a row is available, false when done.
  absl::StatusOr<bool> Step();
  // Steps to the end, for statements without results.
  absl::Status Run();
  // Steps through every row, calling on_row for each; stops at its first error.
  absl::Status ForEachRow(const std::function<absl::Status()>& on_row);
  void Reset();

  int64_t Int(int column) const { return sqlite3_column_int64(stmt_.get(), column); }
  bool IsNull(int column) const { return sqlite3_column_type(stmt_.get(), column) == SQLITE_NULL; }
  // The highest parameter index the SQL uses.
  int Parameters() const { return sqlite3_bind_parameter_count(stmt_.get()); }
  double Double(int column) const { return sqlite3_column_double(stmt_.get(), column); }
  std::string Text(int column) const;

 private:
  friend class Database;
  struct Finalizer {
    void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
  };
  Statement(sqlite3_stmt* stmt, sqlite3* db) : stmt_(stmt), db_(db) {}
  absl::Status Check(int rc, const char* what) const;

  std::unique_ptr<sqlite3_stmt, Finalizer> stmt_;
  sqlite3* db_;
  absl::Status bind_status_;  // first bind failure, reported by Step/Run
};

class Database {
 public:
  // Opens (creating) the file, in WAL mode with synchronous=FULL: a
  // committed transaction survives a crash of the process or the machine.
  static absl::StatusOr<Database> Open(const std::string& path);

  absl::Status Exec(absl::string_view sql);
  absl::StatusOr<Statement> Prepare(absl::string_view sql);
  int64_t LastInsertRowId() const { return sqlite3_last_insert_rowid(db_.get()); }

 private:
  struct Closer {
    void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
  };
  explicit Database(sqlite3* db) : db_(db) {}
  std::unique_ptr<sqlite3, Closer> db_;
};

// A write transaction (BEGIN IMMEDIATE) that rolls back when it leaves
// scope uncommitted: every early return of an error leaves the file as it
// was. Declare it before the statements it covers, so that they are
// finalized first.
class Transaction {
 public:
  static absl::StatusOr<Transaction> Begin(Database* db);
  Transaction(Transaction&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();
  // Commits; on failure the destructor rolls back.
  absl::Status Commit();

 private:
  explicit Transaction(Database* db) : db_(db) {}
  Database* db_;  // null once committed (or moved from)
};

}  // namespace apq

#endif  // APQ_AGGREGATOR_STORE_SQLITE_H_
