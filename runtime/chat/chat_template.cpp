// Mirrors models/minimax_m2/chat_template.jinja statement by statement; each block below names the
// template construct it reproduces. Whitespace: the template runs with trim_blocks + lstrip_blocks
// and mostly `{%-`/`-%}` tags, so the only text it emits is the strings written out here.
#include "runtime/chat/chat_template.h"

#include <string_view>
#include <vector>

#include "runtime/chat/python_json.h"

namespace mm::text {
namespace {

using json = nlohmann::ordered_json;

constexpr std::string_view kToolCallBegin = "<minimax:tool_call>";
constexpr std::string_view kToolCallEnd = "</minimax:tool_call>";

std::string where(size_t index) { return "messages[" + std::to_string(index) + "]"; }

// {{ visible_text(content) }}. `content` == nullptr is a missing key (Jinja Undefined: iterable and
// empty, so it renders ""); an explicit null cannot reach here because null keys were dropped.
mm::Expected<std::string> visible_text(const json* content, const std::string& what) {
  if (content == nullptr) return std::string();
  if (content->is_string()) return content->get<std::string>();
  if (content->is_array()) {
    std::string out;
    for (const json& item : *content) {
      if (item.is_object()) {
        auto type = item.find("type");
        if (type == item.end() || !type->is_string() || type->get_ref<const std::string&>() != "text") continue;
        auto text = item.find("text");
        if (text == item.end()) continue;  // {{ item.text }} of Undefined prints nothing
        auto piece = to_template_text(*text, what + ".content[].text");
        if (!piece) return piece.error();
        out += *piece;
      } else if (item.is_string()) {
        out += item.get<std::string>();
      }
      // Any other item (number, nested list) is skipped by the macro.
    }
    return out;
  }
  return to_template_text(*content, what + ".content");
}

const json* find_key(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

// apply_chat_template's normalization (drop null keys, alias reasoning) and, optionally, vLLM's
// parsing of JSON-string tool-call arguments.
mm::Expected<json> normalize(const json& messages, const ChatTemplateOptions& options) {
  if (!messages.is_array())
    return mm::Error::bad_input(std::string("messages: expected an array of messages, got a JSON ") +
                                messages.type_name());
  if (messages.empty()) return mm::Error::bad_input("messages: the conversation is empty");
  json out = json::array();
  for (size_t i = 0; i < messages.size(); ++i) {
    const json& message = messages[i];
    if (!message.is_object())
      return mm::Error::bad_input(where(i) + ": expected an object, got a JSON " + message.type_name());
    json m = json::object();
    for (const auto& [key, value] : message.items())
      if (!value.is_null()) m[key] = value;

    for (const char* alias : {"reasoning_content", "thinking", "reasoning"}) {
      if (const json* r = find_key(m, alias)) {
        m["reasoning_content"] = *r;
        break;
      }
    }

    const json* role = find_key(m, "role");
    if (role == nullptr || !role->is_string())
      return mm::Error::bad_input(where(i) + ".role: expected a string (system, user, assistant or tool)");
    const std::string& r = role->get_ref<const std::string&>();
    if (r != "system" && r != "user" && r != "assistant" && r != "tool")
      return mm::Error::bad_input(where(i) + ".role: unknown role '" + r +
                                  "' (expected system, user, assistant or tool)");

    if (options.parse_string_arguments && r == "assistant") {
      auto calls = m.find("tool_calls");
      if (calls != m.end() && calls->is_array()) {
        for (size_t j = 0; j < calls->size(); ++j) {
          json& call = (*calls)[j];
          if (!call.is_object()) continue;
          auto fn = call.find("function");
          if (fn == call.end() || !fn->is_object()) continue;
          auto args = fn->find("arguments");
          if (args == fn->end() || args->is_null() ||
              (args->is_string() && args->get_ref<const std::string&>().empty())) {
            (*fn)["arguments"] = json::object();
          } else if (args->is_string()) {
            json parsed = json::parse(args->get_ref<const std::string&>(), nullptr, /*allow_exceptions=*/false);
            if (parsed.is_discarded())
              return mm::Error::bad_input(where(i) + ".tool_calls[" + std::to_string(j) +
                                          "].function.arguments: not valid JSON");
            *args = std::move(parsed);
          }
        }
      }
    }
    out.push_back(std::move(m));
  }
  return out;
}

const std::string& role_of(const json& m) { return m["role"].get_ref<const std::string&>(); }

// macro build_system_message(system_message)
mm::Expected<std::string> system_text(const json* system_message, const ChatTemplateOptions& options) {
  std::string out;
  const json* content = system_message ? find_key(*system_message, "content") : nullptr;
  if (content != nullptr && python_truthy(*content)) {
    auto text = visible_text(content, where(0));
    if (!text) return text.error();
    out = *text;
  } else {
    out = options.model_identity ? *options.model_identity : kMiniMaxDefaultSystemPrompt;
  }
  // '\n' ~ 'Current date: ' + system_message.current_date: Python's `+` needs a string.
  for (auto [key, label] : {std::pair{"current_date", "Current date: "},
                            std::pair{"current_location", "Current location: "}}) {
    const json* value = system_message ? find_key(*system_message, key) : nullptr;
    if (value == nullptr || !python_truthy(*value)) continue;
    if (!value->is_string()) return mm::Error::bad_input(where(0) + "." + key + ": expected a string");
    out += "\n";
    out += label;
    out += value->get<std::string>();
  }
  return out;
}

// {%- if tools -%} ... {%- endif -%}
mm::Expected<std::string> tools_block(const json& tools) {
  if (!python_truthy(tools)) return std::string();
  if (!tools.is_array())
    return mm::Error::bad_input(std::string("tools: expected an array, got a JSON ") + tools.type_name());
  std::string out =
      "\n\n# Tools\nYou may call one or more tools to assist with the user query.\n"
      "Here are the tools available in JSONSchema format:\n\n<tools>\n";
  for (size_t i = 0; i < tools.size(); ++i) {
    const json& tool = tools[i];
    const json* fn = tool.is_object() ? find_key(tool, "function") : nullptr;
    if (fn == nullptr)
      return mm::Error::bad_input("tools[" + std::to_string(i) + "]: expected an object with a 'function' key");
    out += "<tool>" + dumps(*fn) + "</tool>\n";
  }
  out += "</tools>\n\n";
  out += "When making tool calls, use XML format to invoke tools and pass parameters:\n";
  out += "\n<minimax:tool_call>\n"
         "<invoke name=\"tool-name-1\">\n"
         "<parameter name=\"param-key-1\">param-value-1</parameter>\n"
         "<parameter name=\"param-key-2\">param-value-2</parameter>\n"
         "...\n"
         "</invoke>\n"
         "</minimax:tool_call>";
  return out;
}

// The tool_calls part of an assistant message: returns the <minimax:tool_call> block and whether
// `last_tool_call.name` becomes none afterwards.
mm::Expected<std::string> tool_calls_block(const json& calls, const std::string& what, bool& last_name_none) {
  if (!calls.is_array())
    return mm::Error::bad_input(what + ".tool_calls: expected an array, got a JSON " + calls.type_name());
  std::string out = "\n";
  out += kToolCallBegin;
  out += "\n";
  for (size_t j = 0; j < calls.size(); ++j) {
    std::string at = what + ".tool_calls[" + std::to_string(j) + "]";
    const json& raw = calls[j];
    if (!raw.is_object()) return mm::Error::bad_input(at + ": expected an object");
    // {%- if tool_call.function %}{%- set tool_call = tool_call.function %}: the flat shape
    // {name, arguments} is accepted too.
    const json* call = &raw;
    if (const json* fn = find_key(raw, "function"); fn != nullptr && python_truthy(*fn)) call = fn;
    const json* name = call->is_object() ? find_key(*call, "name") : nullptr;
    if (name == nullptr || !name->is_string())
      return mm::Error::bad_input(at + ".function.name: expected a string");
    out += "<invoke name=\"" + name->get<std::string>() + "\">\n";
    if (const json* args = find_key(*call, "arguments"); args != nullptr && args->is_object()) {
      for (const auto& [key, value] : args->items()) {
        out += "<parameter name=\"" + key + "\">";
        out += value.is_string() ? value.get<std::string>() : dumps(value);
        out += "</parameter>\n";
      }
    }
    out += "</invoke>\n";
  }
  out += kToolCallEnd;
  out += "\n";  // the newline before the "Fix by ochafik" comment survives trim/lstrip
  // {%- set last_tool_call.name = message.tool_calls[-1].function.name -%}: Jinja raises when the
  // last call has no `function` key; a non-object function yields Undefined (not none).
  const json& last = calls.back();
  const json* fn = find_key(last, "function");
  if (fn == nullptr)
    return mm::Error::bad_input(what + ".tool_calls[" + std::to_string(calls.size() - 1) +
                                "]: the last tool call has no 'function' object");
  const json* last_name = fn->is_object() ? find_key(*fn, "name") : nullptr;
  last_name_none = last_name != nullptr && last_name->is_null();
  return out;
}

}  // namespace

mm::Expected<std::string> render_minimax_m2_chat(const nlohmann::ordered_json& messages_in,
                                                 const nlohmann::ordered_json& tools,
                                                 const ChatTemplateOptions& options) {
  auto normalized = normalize(messages_in, options);
  if (!normalized) return normalized.error();
  const json& messages = *normalized;

  // Only the first message can be the system message; the rest is the conversation.
  const json* system_message = nullptr;
  size_t first = 0;
  if (role_of(messages[0]) == "system") {
    system_message = &messages[0];
    first = 1;
  }
  const size_t count = messages.size() - first;
  auto conv = [&](size_t k) -> const json& { return messages[first + k]; };

  // ns.last_user_index: reasoning is only re-rendered for assistant turns after it.
  long last_user_index = -1;
  for (size_t k = 0; k < count; ++k)
    if (role_of(conv(k)) == "user") last_user_index = static_cast<long>(k);

  std::string out = "]~!b[]~b]system\n";
  auto sys = system_text(system_message, options);
  if (!sys) return sys.error();
  out += *sys;
  auto tools_text = tools_block(tools);
  if (!tools_text) return tools_text.error();
  out += *tools_text;
  out += "[e~[\n";

  bool last_tool_call_none = true;  // namespace(name=none)
  for (size_t k = 0; k < count; ++k) {
    const json& message = conv(k);
    const std::string& role = role_of(message);
    const std::string what = where(first + k);
    if (role == "assistant") {
      out += "]~b]ai\n";
      auto content = visible_text(find_key(message, "content"), what);
      if (!content) return content.error();
      std::string reasoning;
      if (const json* r = find_key(message, "reasoning_content"); r != nullptr && r->is_string())
        reasoning = r->get<std::string>();
      if (!reasoning.empty() && static_cast<long>(k) > last_user_index)
        out += "<think>\n" + reasoning + "\n</think>\n\n";
      out += *content;
      const json* calls = find_key(message, "tool_calls");
      if (calls != nullptr && python_truthy(*calls)) {
        auto block = tool_calls_block(*calls, what, last_tool_call_none);
        if (!block) return block.error();
        out += *block;
      } else {
        last_tool_call_none = true;
      }
      out += "[e~[\n";
    } else if (role == "tool") {
      if (last_tool_call_none)
        return mm::Error::bad_input(what + ": Message has tool role, but there was no previous assistant "
                                           "message with a tool call!");
      // One "]~b]tool" header per run of consecutive tool messages.
      if (k == 0 || role_of(conv(k - 1)) != "tool") out += "]~b]tool";
      const json* content = find_key(message, "content");
      if (content == nullptr) {
        // Undefined iterates as empty: no <response> at all.
      } else if (content->is_string()) {
        out += "\n<response>" + content->get<std::string>() + "</response>";
      } else if (content->is_array()) {
        for (const json& tr : *content) {
          // tr.output if defined, else tr.text for a text part, else tr itself.
          const json* shown = &tr;
          if (tr.is_object()) {
            if (const json* o = find_key(tr, "output")) {
              shown = o;
            } else if (const json* type = find_key(tr, "type");
                       type != nullptr && type->is_string() && type->get_ref<const std::string&>() == "text" &&
                       find_key(tr, "text") != nullptr) {
              shown = find_key(tr, "text");
            }
          }
          auto text = to_template_text(*shown, what + ".content[]");
          if (!text) return text.error();
          out += "\n<response>" + *text + "\n</response>";
        }
      } else {
        return mm::Error::bad_input(what + ".content: a tool result must be a string or a list, got a JSON " +
                                    content->type_name());
      }
      if (k + 1 == count || role_of(conv(k + 1)) != "tool") out += "[e~[\n";
    } else if (role == "user") {
      out += "]~b]user\n";
      auto content = visible_text(find_key(message, "content"), what);
      if (!content) return content.error();
      out += *content;
      out += "[e~[\n";
    }
    // A system message after the first position renders nothing (the template has no branch for it).
  }

  if (options.add_generation_prompt) out += "]~b]ai\n<think>\n";
  return out;
}

}  // namespace mm::text
