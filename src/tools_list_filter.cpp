#include "tools_list_filter.hpp"

#include <cmath>
#include <cstring>
#include <vector>

#include "json.hpp"

namespace mcpauth {
namespace {

enum class Read { filtered, unchanged, unreadable };

// Whether cJSON prints the document back as it was meant: no NUL byte, no
// escaped NUL (a C string ends there), no run of more than 15 digits
// outside strings (a double does not hold them exactly).
bool prints_back(std::string_view t) {
  bool in_string = false;
  size_t run = 0;
  for (size_t i = 0; i < t.size(); ++i) {
    const char c = t[i];
    if (c == '\0') return false;
    if (in_string) {
      if (c == '\\') {
        if (t.compare(i + 1, 5, "u0000") == 0) return false;
        ++i;  // the escaped character
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
      run = 0;
    } else if (c >= '0' && c <= '9') {
      if (++run > 15) return false;
    } else {
      run = 0;
    }
  }
  return true;
}

// cJSON reads 1e400 as infinity and prints it as null.
bool finite_numbers(const cJSON* j) {
  if (cJSON_IsNumber(j)) return std::isfinite(j->valuedouble);
  for (const cJSON* c = j->child; c; c = c->next)
    if (!finite_numbers(c)) return false;
  return true;
}

bool json_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// The member `name` of an object, null when it has none; *twice is set when
// it has more than one (parsers disagree on which one counts).
cJSON* member(const cJSON* object, const char* name, bool* twice) {
  cJSON* found = nullptr;
  for (cJSON* m = object->child; m; m = m->next)
    if (m->string && std::strcmp(m->string, name) == 0) {
      if (found) *twice = true;
      found = m;
    }
  return found;
}

// A tools entry stays when it names one tool that the user may call.
bool keep(const cJSON* tool, const ToolAllowed& allowed) {
  if (!cJSON_IsObject(tool)) return false;
  bool twice = false;
  const cJSON* name = member(tool, "name", &twice);
  return !twice && cJSON_IsString(name) && allowed(name->valuestring);
}

Read filter_document(std::string_view text, const ToolAllowed& allowed, std::string* out) {
  if (!prints_back(text)) return Read::unreadable;
  const std::string copy(text);  // cJSON wants a C string
  const char* end = nullptr;
  Json doc(cJSON_ParseWithLengthOpts(copy.c_str(), copy.size(), &end, false));
  if (!doc || !end) return Read::unreadable;
  for (const char* p = end; p < copy.c_str() + copy.size(); ++p)
    if (!json_space(*p)) return Read::unreadable;
  // a batch answers a batch, which the guard never takes for a tools/list
  if (!cJSON_IsObject(doc.get()) || !finite_numbers(doc.get())) return Read::unreadable;

  bool ignored = false, twice = false;
  if (member(doc.get(), "method", &ignored)) return Read::unchanged;  // a request or notification
  cJSON* result = member(doc.get(), "result", &twice);
  if (twice) return Read::unreadable;
  if (!cJSON_IsObject(result)) return Read::unchanged;  // an error, or not JSON-RPC
  cJSON* tools = member(result, "tools", &twice);
  if (twice) return Read::unreadable;
  if (!cJSON_IsArray(tools)) return Read::unchanged;

  bool removed = false;
  for (cJSON* t = tools->child; t;) {
    cJSON* next = t->next;
    if (!keep(t, allowed)) {
      cJSON_Delete(cJSON_DetachItemViaPointer(tools, t));
      removed = true;
    }
    t = next;
  }
  if (!removed) return Read::unchanged;
  *out = json_text(doc.get());
  return Read::filtered;
}

// One line of the stream: [begin, end) its text, next where the one after
// it starts (npos: the stream ends before the line does).  In a stream
// still arriving, a CR at its end may be the first half of a CRLF.
struct Line {
  size_t begin, end, next;
};

Line line_at(std::string_view s, size_t pos, bool arriving) {
  size_t i = s.find_first_of("\r\n", pos);
  if (i == std::string_view::npos || (arriving && s[i] == '\r' && i + 1 == s.size()))
    return {pos, s.size(), std::string_view::npos};
  size_t next = (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ? i + 2 : i + 1;
  return {pos, i, next};
}

// One event: its lines, and the blank line that ends it at `end`.
struct Event {
  std::vector<Line> lines;
  Line blank{};
  size_t end = 0;
};

// The event at pos; false when the stream does not end one there.
bool event_at(std::string_view s, size_t pos, bool arriving, Event* ev) {
  ev->lines.clear();
  while (pos < s.size()) {
    Line l = line_at(s, pos, arriving);
    if (l.next == std::string_view::npos) return false;
    pos = l.next;
    if (l.begin == l.end) {
      ev->blank = l;
      ev->end = pos;
      return true;
    }
    ev->lines.push_back(l);
  }
  return false;
}

// The event's data: its "data" fields' values joined with "\n" (one space
// after the colon dropped); which lines those are in *is_data.
std::string event_data(std::string_view s, const Event& ev, std::vector<bool>* is_data) {
  std::string data;
  bool has_data = false;
  is_data->assign(ev.lines.size(), false);
  for (size_t i = 0; i < ev.lines.size(); ++i) {
    std::string_view text = s.substr(ev.lines[i].begin, ev.lines[i].end - ev.lines[i].begin);
    if (text.front() == ':') continue;  // a comment
    size_t colon = text.find(':');
    std::string_view field = text.substr(0, colon), value;
    if (colon != std::string_view::npos) {
      value = text.substr(colon + 1);
      if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    }
    if (field != "data") continue;
    if (has_data) data += '\n';
    data.append(value);
    has_data = true;
    (*is_data)[i] = true;
  }
  return data;
}

size_t after_bom(std::string_view s) { return s.compare(0, 3, "\xEF\xBB\xBF") == 0 ? 3 : 0; }

// A JSON-RPC response: an object with a result or an error, no method.
bool is_response(const std::string& data) {
  Json doc(cJSON_Parse(data.c_str()));
  return cJSON_IsObject(doc.get()) && !cJSON_HasObjectItem(doc.get(), "method") &&
         (cJSON_HasObjectItem(doc.get(), "result") || cJSON_HasObjectItem(doc.get(), "error"));
}

}  // namespace

ToolsListFiltered filter_tools_list_json(std::string_view body, const ToolAllowed& allowed) {
  ToolsListFiltered r;
  switch (filter_document(body, allowed, &r.body)) {
    case Read::filtered: r.outcome = ToolsListFiltered::filtered; break;
    case Read::unchanged: r.outcome = ToolsListFiltered::unchanged; break;
    case Read::unreadable: r.outcome = ToolsListFiltered::not_filterable; break;
  }
  return r;
}

ToolsListFiltered filter_tools_list_sse(std::string_view s, const ToolAllowed& allowed) {
  ToolsListFiltered r;
  std::string out;
  bool changed = false, unreadable = false;
  size_t copied = 0;  // s up to here is in out
  size_t pos = after_bom(s);
  Event ev;
  std::vector<bool> is_data;

  // an event the stream does not end is not dispatched by clients: left
  // as it is
  for (; pos < s.size() && event_at(s, pos, false, &ev); pos = ev.end) {
    std::string data = event_data(s, ev, &is_data);
    if (data.empty()) continue;  // e.g. a priming event: an id, no message

    std::string filtered;
    Read read = filter_document(data, allowed, &filtered);
    if (read == Read::unreadable) unreadable = true;
    if (read != Read::filtered) continue;

    out.append(s.substr(copied, pos - copied));
    bool written = false;
    for (size_t i = 0; i < ev.lines.size(); ++i) {
      const Line& l = ev.lines[i];
      if (!is_data[i]) {
        out.append(s.substr(l.begin, l.next - l.begin));
      } else if (!written) {
        // cJSON escapes line breaks in strings: the data is one line
        out.append("data: ").append(filtered).append(s.substr(l.end, l.next - l.end));
        written = true;
      }
    }
    out.append(s.substr(ev.blank.begin, ev.blank.next - ev.blank.begin));
    copied = ev.end;
    changed = true;
  }

  if (changed) {
    out.append(s.substr(copied));
    r.outcome = ToolsListFiltered::filtered;
    r.body = std::move(out);
  } else {
    r.outcome = unreadable ? ToolsListFiltered::not_filterable : ToolsListFiltered::unchanged;
  }
  return r;
}

size_t sse_response_end(std::string_view s, size_t* from) {
  size_t pos = *from ? *from : after_bom(s);
  Event ev;
  std::vector<bool> is_data;
  for (; pos < s.size() && event_at(s, pos, true, &ev); pos = ev.end) {
    *from = ev.end;
    std::string data = event_data(s, ev, &is_data);
    if (!data.empty() && is_response(data)) return ev.end;
  }
  return 0;
}

}  // namespace mcpauth
