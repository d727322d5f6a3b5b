#include "server/conversation.h"

#include <algorithm>

namespace fieldsync::server {

std::string Conversation::Tag() const {
  return "session " + std::to_string(id_) + (node_ ? " node " + ToHex(node_) : std::string());
}

void Conversation::OnFrame(const std::string& frame, bool text) {
  json m;
  Status st;
  std::vector<Change> changes;
  bool taken = false;
  if (text) {
    // Text frames carry plain JSON, no flags byte: handy for debugging by hand.
    std::string framed(1, '\0');
    framed += frame;
    st = DecodeFrame(framed, hub_.options().limits, &m);
  } else {
    st = DecodeChangesFrame(frame, hub_.options().limits, &m, &changes, &taken);
  }
  if (!hello_done_ && st.ok()) text_mode_ = text;
  if (!st.ok()) {
    last_push_ok_ = false;  // it may have been a push: one that follows it is refused (OnPush)
    SendError(st, !hello_done_);
    return;
  }
  // A field of an unexpected JSON type makes nlohmann throw; whatever a peer
  // sends, it becomes a protocol error for that peer, never a crash, and a
  // push in progress rolls back with its transaction.
  try {
    Dispatch(m, taken ? &changes : nullptr);
  } catch (const std::exception& e) {
    last_push_ok_ = false;
    SendError(Status::Protocol(std::string("malformed message: ") + e.what()), !hello_done_, m.value("id", json()));
  }
}

void Conversation::Dispatch(const json& m, std::vector<Change>* changes) {
  const std::string& type = m["type"].get_ref<const std::string&>();
  if (!hello_done_) {
    if (type != msg::kHello) {
      SendError(Status::Protocol("the first message must be hello, got '" + type + "'"), true);
      return;
    }
    OnHello(m);
    return;
  }
  if (type == msg::kPush) OnPush(m, changes);
  else if (type == msg::kPull) OnPull(m);
  else if (type == msg::kSubscribe) OnSubscribe(m);
  else if (type == msg::kSnapshot) OnSnapshot(m);
  else if (type == msg::kScopeAck) OnScopeAck(m);
  else SendError(Status::Protocol("unknown message type '" + type + "'"), false, m.value("id", json()));
}

void Conversation::OnHello(const json& m) {
  bool speaks = false;
  if (m.contains("protocol") && m["protocol"].is_array())
    for (const auto& v : m["protocol"])
      if (v.is_number_integer() && v.get<int>() == kProtocolVersion) speaks = true;
  if (!speaks) {
    SendError(Status(Code::kUnsupported, "this server speaks protocol version " +
                                             std::to_string(kProtocolVersion) + " only"), true);
    return;
  }
  uint64_t node = 0;
  if (!m.contains("node") || !m["node"].is_string() || !ParseHex(m["node"].get<std::string>(), &node) || node == 0) {
    SendError(Status::Protocol("hello needs 'node': 16 hex digits, not zero"), true);
    return;
  }
  int64_t cursor = 0;
  if (m.contains("cursor") && m["cursor"].is_number_integer()) cursor = std::max<int64_t>(0, m["cursor"].get<int64_t>());
  node_ = node;
  // Registered before any push of its can commit: compaction keeps what
  // this device has not pulled, so a retried push is still recognised.
  if (Status reg = hub_.NoteDevice(node_, cursor, true); !reg.ok()) {
    SendError(reg, true);
    return;
  }
  int64_t pending = m.contains("pending") && m["pending"].is_number_integer() ? m["pending"].get<int64_t>() : -1;
  hub_.NoteDeviceUser(node_, actor_ ? &*actor_ : nullptr, pending < 0 ? -1 : pending);
  encoding_ = Encoding::kJson;
  if (m.contains("encodings") && m["encodings"].is_array()) {
    for (const auto& e : m["encodings"]) {
      Encoding enc;
      if (e.is_string() && ParseEncoding(e.get<std::string>(), &enc)) { encoding_ = enc; break; }
    }
  }
  // A device with nothing yet says its local date; the accounts of its
  // visits planned for that day come first in its bootstrap.
  json first_keys = json::array();
  if (cursor == 0 && m.contains("today") && m["today"].is_string() &&
      m["today"].get_ref<const std::string&>().size() == 10) {
    store::Scope scope;
    std::vector<std::string> keys;
    Status st = CurrentScope(&scope);
    if (st.ok()) st = hub_.FirstKeys(scope, m["today"].get<std::string>(), &keys);
    if (!st.ok()) {
      SendError(st, true);
      return;
    }
    first_keys = keys;
  }
  hello_done_ = true;
  const auto& lim = hub_.options().limits;
  std::string fp = m.contains("schema") && m["schema"].is_string() ? m["schema"].get<std::string>() : "";
  std::string client = m.contains("client") && m["client"].is_string() ? m["client"].get<std::string>() : "?";
  Send({{"type", msg::kWelcome},
        {"protocol", kProtocolVersion},
        {"server", ToHex(hub_.server_node())},
        {"server_time", hub_.NowMs()},
        {"encoding", text_mode_ ? "json" : EncodingName(encoding_)},
        {"schema", hub_.schema().fingerprint()},
        {"schema_match", fp == hub_.schema().fingerprint()},
        {"head", hub_.head()},
        {"compacted_through", hub_.compacted_through()},
        {"user", actor_ ? json(actor_->user.id) : json()},
        {"role", actor_ ? json(store::RoleName(actor_->user.role)) : json()},
        {"first_keys", first_keys},
        {"features", Features()},
        {"limits", {{"max_frame_bytes", lim.max_frame_bytes},
                    {"max_decompressed_bytes", lim.max_decompressed_bytes},
                    {"max_changes_per_push", lim.max_changes_per_push},
                    {"max_changes_per_pull", lim.max_changes_per_pull},
                    {"max_json_depth", lim.max_json_depth},
                    {"max_scope_keys", lim.max_scope_keys}}}});
  hub_.Log(Tag() + ": hello from " + client.substr(0, 64) + ", encoding " + EncodingName(encoding_));
}

json Conversation::Features() const {
  json f = json::array();
  if (hub_.options().feature_push_after) f.push_back("push_after");
  if (hub_.options().feature_pull_applied) f.push_back("pull_applied");
  if (hub_.options().feature_snapshot_columns) f.push_back("snapshot_columns");
  return f;
}

void Conversation::OnPush(const json& m, std::vector<Change>* decoded) {
  json batch = m.value("batch", json());
  // The server keeps the last push's `batch` for the connection's life and
  // quotes both ids in errors: they must stay small (protocol.md 4.7).
  const bool honour_after = hub_.options().feature_push_after;
  auto small_id = [](const json& v) {
    return v.is_null() || v.is_number_integer() || (v.is_string() && v.get_ref<const std::string&>().size() <= 64);
  };
  if (!small_id(batch) || (honour_after && m.contains("after") && !small_id(m["after"]))) {
    last_push_ok_ = false;
    SendError(Status::Protocol("push 'batch' and 'after' must be null, an integer or a string of at most 64 bytes"),
              false, small_id(batch) ? batch : json());
    return;
  }
  // A push sent before the previous one's ack names it in `after` (protocol.md
  // 6.1). It is applied only if that push was the last one handled here and
  // was not refused whole: so a node's batches enter the log in the order it
  // sent them, never a later one ahead of an earlier one that failed, which
  // the duplicate rule after compaction relies on (protocol.md 8.8).
  const bool follows_ok =
      !honour_after || !m.contains("after") || (last_push_ok_ && m["after"] == last_push_batch_);
  last_push_batch_ = batch;
  last_push_ok_ = false;  // until its ack below
  if (!follows_ok) {
    auto quote = [](const json& v) { return v.dump(-1, ' ', false, json::error_handler_t::replace); };
    SendError(Status(Code::kClosed, "push " + quote(batch) + " follows push " + quote(m["after"]) +
                                        ", which was refused or never arrived: nothing applied; send them again"),
              false, batch);
    return;
  }
  if (!decoded && (!m.contains("changes") || !m["changes"].is_array())) {
    SendError(Status::Protocol("push needs a 'changes' array"), false, batch);
    return;
  }
  const size_t count = decoded ? decoded->size() : m["changes"].size();
  const auto& lim = hub_.options().limits;
  if (count > lim.max_changes_per_push) {
    SendError(Status::Limit("push of " + std::to_string(count) + " changes exceeds max_changes_per_push " +
                            std::to_string(lim.max_changes_per_push)), false, batch);
    return;
  }
  std::vector<Change> changes;
  if (decoded) {
    changes = std::move(*decoded);
  } else {
    const auto& arr = m["changes"];
    changes.reserve(arr.size());
    for (size_t i = 0; i < arr.size(); ++i) {
      Change c;
      Status st = ChangeFromJson(arr[i], &c);
      if (!st.ok()) {
        // Without an identity a change cannot be acknowledged on its own:
        // refuse the whole batch, apply nothing.
        SendError(Status::Protocol("change " + std::to_string(i) + ": " + st.message()), false, batch);
        return;
      }
      changes.push_back(std::move(c));
    }
  }
  std::vector<store::PushResult> results;
  std::vector<Change> applied;
  // A device may only push changes it made itself.
  std::vector<size_t> foreign;
  for (size_t i = 0; i < changes.size(); ++i)
    if (changes[i].stamp.node != node_) foreign.push_back(i);
  // Only a push with foreign changes needs its own changes copied apart.
  std::vector<Change> own_copy;
  std::vector<size_t> own_index;
  if (!foreign.empty())
    for (size_t i = 0; i < changes.size(); ++i)
      if (changes[i].stamp.node == node_) {
        own_copy.push_back(changes[i]);
        own_index.push_back(i);
      }
  const std::vector<Change>& own = foreign.empty() ? changes : own_copy;
  std::vector<store::PushResult> own_results;
  Status st = RefreshActor();  // the push computes the scope itself
  if (st.ok()) st = hub_.Push(own, &own_results, &applied, actor_ ? &*actor_ : nullptr);
  if (!st.ok()) {
    hub_.Log(Tag() + ": push failed, nothing applied: " + st.ToString());
    SendError(st, false, batch);
    return;
  }
  if (foreign.empty()) {
    results = std::move(own_results);
  } else {
    results.assign(changes.size(), store::PushResult{});
    for (size_t k = 0; k < own_index.size(); ++k) results[own_index[k]] = std::move(own_results[k]);
  }
  for (size_t i : foreign) {
    results[i].result = store::ChangeResult::kRejected;
    results[i].code = Code::kPermissionDenied;
    results[i].message = "change stamped by another node";
  }
  json rejected = json::array();
  size_t n_applied = 0, n_dup = 0;
  for (size_t i = 0; i < results.size(); ++i) {
    switch (results[i].result) {
      case store::ChangeResult::kApplied: ++n_applied; break;
      case store::ChangeResult::kDuplicate: ++n_dup; break;
      case store::ChangeResult::kRejected:
        rejected.push_back({{"i", i}, {"id", changes[i].IdString()}, {"code", CodeName(results[i].code)},
                            {"message", results[i].message}});
        break;
    }
  }
  last_push_ok_ = true;
  Send({{"type", msg::kAck}, {"batch", batch}, {"applied", n_applied}, {"duplicates", n_dup},
        {"rejected", rejected}, {"head", hub_.head()}});
  hub_.Log(Tag() + ": push " + std::to_string(changes.size()) + ": " + std::to_string(n_applied) + " applied, " +
           std::to_string(n_dup) + " duplicate, " + std::to_string(rejected.size()) + " rejected");
  for (const auto& r : rejected) hub_.Log(Tag() + ":   rejected " + r.dump());
  hub_.NotePushed(node_, static_cast<int64_t>(changes.size()));
  if (n_applied) hub_.NotifyAll(link_->subscriber());
}

void Conversation::OnPull(const json& m) {
  json id = m.value("id", json());
  if (!m.contains("cursor") || !m["cursor"].is_number_integer() || m["cursor"].get<int64_t>() < 0) {
    SendError(Status::Protocol("pull needs a non-negative integer 'cursor'"), false, id);
    return;
  }
  size_t limit = hub_.options().limits.max_changes_per_pull;
  if (m.contains("limit") && m["limit"].is_number_unsigned() && m["limit"].get<size_t>() > 0)
    limit = std::min(limit, m["limit"].get<size_t>());
  int64_t cursor = m["cursor"].get<int64_t>();
  // A client reading ahead (the next page asked for before this one is
  // applied) says how far it has really applied: only that may move the
  // compaction horizon (protocol.md 6.3).
  int64_t applied = cursor;
  if (hub_.options().feature_pull_applied && m.contains("applied")) {
    if (!m["applied"].is_number_integer() || m["applied"].get<int64_t>() < 0) {
      SendError(Status::Protocol("pull 'applied' must be a non-negative integer"), false, id);
      return;
    }
    applied = std::min(applied, m["applied"].get<int64_t>());
  }
  hub_.NoteDevice(node_, applied, false);
  std::vector<Change> out;
  int64_t scanned = 0;
  store::Scope scope;
  Status st = CurrentScope(&scope);
  if (st.ok()) st = hub_.ReadLog(cursor, limit, node_, &out, &scanned, &scope);
  json diff;
  if (st.ok()) st = ScopeDiff(scope, &diff);
  if (!st.ok()) {
    SendError(st, false, id);
    return;
  }
  if (ResyncIfCompacted(cursor, id, false)) return;
  int64_t head = hub_.head();
  json reply = {{"type", msg::kChanges}, {"id", id}, {"cursor", scanned}, {"more", scanned < head}, {"head", head}};
  if (!diff.is_null()) reply["scope"] = std::move(diff);
  SendChanges(reply, out);
}

Status Conversation::CurrentScope(store::Scope* scope) {
  if (!actor_) {
    *scope = store::Scope{};
    scope->all = true;
    return Status::OK();
  }
  Status st = RefreshActor();
  return st.ok() ? hub_.ComputeScope(*actor_, scope) : st;
}

Status Conversation::RefreshActor() {
  if (!actor_) return Status::OK();
  // The user as they are now: a role, team or region change counts at once,
  // and a deactivated user's connection ends.
  bool found = false;
  store::User now;
  Status st = hub_.GetUser(actor_->user.id, &now, &found);
  if (!st.ok()) return st;
  if (!found || !now.active) return Status(Code::kUnauthenticated, "user '" + actor_->user.id + "' is deactivated");
  actor_->user = now;
  return Status::OK();
}

Status Conversation::ScopeDiff(const store::Scope& now, json* diff) {
  *diff = json();
  if (!actor_ || now.all) return Status::OK();
  std::vector<std::string> held;
  Status st = hub_.DeviceKeys(node_, actor_->user.id, &held);
  if (!st.ok()) return st;
  std::vector<std::string> add, remove;
  std::set_difference(now.keys.begin(), now.keys.end(), held.begin(), held.end(), std::back_inserter(add));
  std::set_difference(held.begin(), held.end(), now.keys.begin(), now.keys.end(), std::back_inserter(remove));
  if (add.empty() && remove.empty()) return Status::OK();
  // Bounded per reply; the device acknowledges and asks again for the rest.
  const size_t cap = hub_.options().limits.max_scope_keys;
  if (add.size() > cap) add.resize(cap);
  if (remove.size() > cap) remove.resize(cap);
  *diff = {{"add", add}, {"remove", remove}};
  return Status::OK();
}

void Conversation::OnScopeAck(const json& m) {
  json id = m.value("id", json());
  std::vector<std::string> lists[2];
  const char* names[2] = {"add", "remove"};
  for (int k = 0; k < 2; ++k) {
    if (!m.contains(names[k])) continue;
    const json& a = m[names[k]];
    if (!a.is_array() || a.size() > hub_.options().limits.max_scope_keys) {
      SendError(Status::Protocol(std::string("scope_ack '") + names[k] + "' must be an array of at most max_scope_keys keys"),
                false, id);
      return;
    }
    for (const auto& v : a) {
      if (!v.is_string() || v.get_ref<const std::string&>().size() > 256) {
        SendError(Status::Protocol("scope keys are strings of at most 256 bytes"), false, id);
        return;
      }
      lists[k].push_back(v.get<std::string>());
    }
  }
  if (!actor_) {
    Send({{"type", msg::kScopeAck}, {"id", id}});
    return;
  }
  // A device confirms what it loaded, but it may only come to hold what its
  // user may read now: held keys grant write access (section 8.9).
  store::Scope scope;
  if (Status st = CurrentScope(&scope); !st.ok()) {
    SendError(st, false, id);
    return;
  }
  std::erase_if(lists[0], [&](const std::string& k) { return !scope.Contains(k); });
  if (Status st = hub_.UpdateDeviceKeys(node_, actor_->user.id, lists[0], lists[1], false); !st.ok()) {
    SendError(st, false, id);
    return;
  }
  Send({{"type", msg::kScopeAck}, {"id", id}});
}

void Conversation::OnSnapshot(const json& m) {
  json id = m.value("id", json());
  // The first page fixes the snapshot's cursor: the head when it began.
  // Every later page is at least that new, and the log after it completes
  // the picture, so the client pulls from there once the last page is in.
  int64_t cursor = hub_.head();
  if (m.contains("cursor")) {
    if (!m["cursor"].is_number_integer() || m["cursor"].get<int64_t>() < 0) {
      SendError(Status::Protocol("snapshot 'cursor' must be a non-negative integer"), false, id);
      return;
    }
    cursor = m["cursor"].get<int64_t>();
  }
  std::string after_table, after_row;
  if (m.contains("after") && !m["after"].is_null()) {
    const json& a = m["after"];
    if (!a.is_array() || a.size() != 2 || !a[0].is_string() || !a[1].is_string()) {
      SendError(Status::Protocol("snapshot 'after' must be [table, row id]"), false, id);
      return;
    }
    after_table = a[0].get<std::string>();
    after_row = a[1].get<std::string>();
  }
  // `compact`: rows in the compact form (one stamp per row), what the
  // reference client asks for; without it, every field names its stamp.
  bool compact = false;
  if (m.contains("compact")) {
    if (!m["compact"].is_boolean()) {
      SendError(Status::Protocol("snapshot 'compact' must be a boolean"), false, id);
      return;
    }
    compact = m["compact"].get<bool>();
  }
  // `columns`: the page as column-major blocks (protocol.md 6.6), 40% fewer
  // bytes on the wire than compact rows; without the feature, ignored.
  bool columns = false;
  if (m.contains("columns")) {
    if (!m["columns"].is_boolean()) {
      SendError(Status::Protocol("snapshot 'columns' must be a boolean"), false, id);
      return;
    }
    columns = m["columns"].get<bool>() && hub_.options().feature_snapshot_columns;
  }
  // `keys`: only the rows of these scope keys (a scope that grew, the
  // pull's `scope.add`); without it, the device's whole scope.
  bool partial = m.contains("keys");
  std::vector<std::string> keys;
  if (partial) {
    const json& k = m["keys"];
    if (!k.is_array() || k.size() > hub_.options().limits.max_scope_keys) {
      SendError(Status::Protocol("snapshot 'keys' must be an array of at most max_scope_keys keys"), false, id);
      return;
    }
    for (const auto& v : k) {
      if (!v.is_string()) {
        SendError(Status::Protocol("snapshot 'keys' must hold strings"), false, id);
        return;
      }
      keys.push_back(v.get<std::string>());
    }
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  }
  // `rows`: only these rows (what a refused push must be reverted to).
  std::string rows_json;
  if (m.contains("rows")) {
    const json& r = m["rows"];
    bool ok = r.is_array() && r.size() <= hub_.options().limits.max_scope_keys;
    for (size_t i = 0; ok && i < r.size(); ++i)
      ok = r[i].is_array() && r[i].size() == 2 && r[i][0].is_string() && r[i][1].is_string();
    if (!ok) {
      SendError(Status::Protocol("snapshot 'rows' must be an array of at most max_scope_keys [table, row id]"), false, id);
      return;
    }
    rows_json = r.dump();
    partial = true;
    if (!m.contains("keys")) keys.clear();
  }
  if (cursor < hub_.compacted_through() || cursor > hub_.head()) {
    // Compacted past while the device was away mid-snapshot (or a cursor
    // from another server): start again.
    Send({{"type", msg::kSnapshot}, {"id", id}, {"rows", json::array()}, {"more", false}, {"resync", true}});
    return;
  }
  hub_.NoteDevice(node_, cursor, false);
  store::Scope scope;
  Status st = CurrentScope(&scope);
  if (!st.ok()) {
    SendError(st, false, id);
    return;
  }
  if (partial && m.contains("keys")) {
    // Never more than the device may read, whatever keys it asks for.
    store::Scope asked;
    for (const auto& k : keys)
      if (scope.Contains(k)) asked.keys.push_back(k);
    scope = std::move(asked);
  } else if (!partial && actor_ && !scope.all && after_table.empty() && after_row.empty()) {
    // A whole-scope snapshot begins: from here the device holds this scope
    // (what changes meanwhile shows in the next pull's scope diff).
    if (!(st = hub_.UpdateDeviceKeys(node_, actor_->user.id, scope.keys, {}, true)).ok()) {
      SendError(st, false, id);
      return;
    }
  }
  std::vector<RowState> rows;
  bool more = false;
  st = hub_.ReadState(after_table, after_row, hub_.options().snapshot_rows_per_page, &rows, &more, &scope, rows_json);
  if (!st.ok()) {
    SendError(st, false, id);
    return;
  }
  json next = rows.empty() ? json() : json::array({rows.back().table, rows.back().row});
  json reply = {{"type", msg::kSnapshot}, {"id", id}, {"cursor", cursor}, {"more", more}, {"after", next},
                {"head", hub_.head()}};
  if (columns) {
    reply["blocks"] = SnapshotBlocksToJson(rows, &hub_.schema());
  } else {
    json arr = json::array();
    for (const auto& r : rows) arr.push_back(RowStateToJson(r, compact, &hub_.schema()));
    reply["rows"] = std::move(arr);
  }
  if (after_table.empty() && after_row.empty() && rows_json.empty()) {
    // The first page says how many rows the whole snapshot holds: a
    // progress bar's denominator (rows changed meanwhile may move it a little).
    int64_t total = 0;
    if (hub_.CountRows(scope, &total).ok()) reply["total_rows"] = total;
  }
  Send(reply);
}

void Conversation::OnSubscribe(const json& m) {
  if (!m.contains("cursor") || !m["cursor"].is_number_integer() || m["cursor"].get<int64_t>() < 0) {
    SendError(Status::Protocol("subscribe needs a non-negative integer 'cursor'"), false);
    return;
  }
  live_cursor_ = m["cursor"].get<int64_t>();
  live_ = true;  // Pump answers resync if the cursor is behind the compaction
  link_->SubscribeLive();
  Pump();
}

void Conversation::Pump() {
  // One batch in flight at a time: a slow reader holds back only itself.
  if (!live_ || closing_ || link_->SendPending()) return;
  // A listening device is alive; how far it has applied the feed only it
  // can say (a frame written is not a frame applied), so no cursor here.
  hub_.NoteDevice(node_, 0, false);
  for (;;) {
    std::vector<Change> out;
    int64_t scanned = live_cursor_;
    store::Scope scope;
    Status st = CurrentScope(&scope);
    if (st.ok()) st = hub_.ReadLog(live_cursor_, hub_.options().limits.max_changes_per_pull, node_, &out, &scanned, &scope);
    json diff;
    if (st.ok()) st = ScopeDiff(scope, &diff);
    if (!st.ok()) {
      SendError(st, false);
      return;
    }
    if (!diff.is_null()) {
      // The device's scope moved (an assignment): it must push, drop and
      // load before it goes on; it leaves live mode and syncs.
      Send({{"type", msg::kChanges}, {"live", true}, {"changes", json::array()}, {"cursor", live_cursor_},
            {"more", true}, {"head", hub_.head()}, {"scope", std::move(diff)}});
      live_ = false;
      return;
    }
    // Behind a compaction (a slow live reader that outlived the device
    // retention, or a subscribe from an old cursor): tell it once and stop.
    if (ResyncIfCompacted(live_cursor_, nullptr, true)) {
      live_ = false;
      return;
    }
    if (scanned == live_cursor_) return;  // nothing new
    live_cursor_ = scanned;
    if (out.empty()) continue;  // only our own changes in that window
    int64_t head = hub_.head();
    SendChanges({{"type", msg::kChanges}, {"live", true}, {"cursor", scanned}, {"more", scanned < head}, {"head", head}},
                out);
    return;
  }
}

bool Conversation::ResyncIfCompacted(int64_t cursor, const json& id, bool live) {
  // Checked after the log was read: a compaction on another io thread
  // between an earlier check and the read could have left a gap.
  if (cursor >= hub_.compacted_through()) return false;
  json m = {{"type", msg::kChanges}, {"changes", json::array()}, {"cursor", cursor}, {"more", false},
            {"head", hub_.head()}, {"resync", true}};
  if (live) m["live"] = true;
  else m["id"] = id;
  Send(m);
  return true;
}

void Conversation::SendError(const Status& st, bool fatal, const json& in_reply_to) {
  hub_.Log(Tag() + ": " + (fatal ? "fatal " : "") + "error " + st.ToString());
  // Only the peer's own mistakes count against its error budget; the
  // server's storage trouble (io_error) must not disconnect a good client.
  bool peer_fault = st.code() != Code::kIoError;
  fatal |= st.code() == Code::kUnauthenticated;  // a user deactivated mid-connection
  bool exhausted = !fatal && peer_fault && ++errors_ > hub_.options().max_errors_per_session;
  json e = ErrorMessage(st, fatal || exhausted);
  if (!in_reply_to.is_null()) e["in_reply_to"] = in_reply_to;
  Send(e);
  if (fatal) {
    Close(CodeName(st.code()));
  } else if (exhausted) {
    hub_.Log(Tag() + ": too many errors, closing");
    Close("too many errors");
  }
}

void Conversation::SendChanges(const json& envelope, const std::vector<Change>& changes) {
  if (closing_) return;
  // The text form is the JSON payload alone, without the flags byte.
  if (text_mode_) link_->SendFrame(EncodeChangesFrame(envelope, changes, Encoding::kJson, false).substr(1), true);
  else link_->SendFrame(EncodeChangesFrame(envelope, changes, encoding_), false);
}

void Conversation::Send(const json& m) {
  if (closing_) return;
  if (text_mode_) link_->SendFrame(m.dump(), true);
  else link_->SendFrame(EncodeFrame(m, encoding_), false);
}

void Conversation::Close(const std::string& reason) {
  if (closing_) return;
  closing_ = true;
  link_->CloseLink(kClosePolicy, reason);
}

}  // namespace fieldsync::server
