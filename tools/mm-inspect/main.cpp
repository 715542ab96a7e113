// mm-inspect PLAN [--json]: a thin main over mm::rt::inspect_command.
#include <iostream>

#include <CLI/CLI.hpp>

#include "runtime/tooling/inspect.h"
#include "support/tool_main.h"

static int tool_main(int argc, char** argv) {
  CLI::App app{"mm-inspect: print what a plan (.mmp) contains"};
  std::string plan;
  bool json = false;
  app.add_option("PLAN", plan, "plan file")->required();
  app.add_flag("--json", json, "machine-readable output");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  return mm::rt::inspect_command(plan, json, std::cout, std::cerr);
}

int main(int argc, char** argv) {
  return mm::run_tool("mm-inspect", [&] { return tool_main(argc, argv); });
}
