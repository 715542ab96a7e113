#include "models/synth/embedded.h"

// The build passes each file's absolute path as a macro (models/synth/CMakeLists.txt, which also
// makes this object depend on the files). .incbin copies the bytes into .rodata at assembly time:
// no generated sources, no runtime file access.
#if !defined(MM_SYNTH_TINY_TOKENIZER) || !defined(MM_SYNTH_FULL_TOKENIZER) || \
    !defined(MM_SYNTH_CHAT_TEMPLATE)
#error "models/synth/CMakeLists.txt must define the embedded file paths"
#endif

#define MM_SYNTH_INCBIN(sym, path)                    \
  __asm__(".section .rodata\n"                        \
          ".balign 16\n"                              \
          ".global " #sym "_begin\n" #sym "_begin:\n" \
          ".incbin \"" path "\"\n"                    \
          ".global " #sym "_end\n" #sym "_end:\n"     \
          ".byte 0\n"                                 \
          ".previous\n")

MM_SYNTH_INCBIN(mm_synth_tiny_tokenizer, MM_SYNTH_TINY_TOKENIZER);
MM_SYNTH_INCBIN(mm_synth_full_tokenizer, MM_SYNTH_FULL_TOKENIZER);
MM_SYNTH_INCBIN(mm_synth_chat_template, MM_SYNTH_CHAT_TEMPLATE);

extern "C" {
extern const char mm_synth_tiny_tokenizer_begin[], mm_synth_tiny_tokenizer_end[];
extern const char mm_synth_full_tokenizer_begin[], mm_synth_full_tokenizer_end[];
extern const char mm_synth_chat_template_begin[], mm_synth_chat_template_end[];
}

namespace mm::synth {

std::string_view tiny_tokenizer_json() {
  return {mm_synth_tiny_tokenizer_begin,
          static_cast<size_t>(mm_synth_tiny_tokenizer_end - mm_synth_tiny_tokenizer_begin)};
}

std::string_view full_tokenizer_json() {
  return {mm_synth_full_tokenizer_begin,
          static_cast<size_t>(mm_synth_full_tokenizer_end - mm_synth_full_tokenizer_begin)};
}

std::string_view chat_template_jinja() {
  return {mm_synth_chat_template_begin,
          static_cast<size_t>(mm_synth_chat_template_end - mm_synth_chat_template_begin)};
}

}  // namespace mm::synth
