// How the command line prints values (batteries §8.4): `yprint`, and the YAML it falls back to.
//
// The original prints with moat-util's `yprint`: ints and floats as Python `print` does, str and
// bytes as their Python `repr`, everything else through a safe YAML dumper in block style, with
// these representers: multi-line str in `|` style, Path as `!P <path string>`, bytes as
// `!bin <text>` when they decode as ASCII, `!hex aa:bb:…` when not and at most 32 bytes long,
// `!!binary` (base64, `|` style) otherwise.
//
// `yaml_dump` reproduces PyYAML's emitter (analyze_scalar / choose_scalar_style and its plain,
// quoted and literal writers, 80-column folding, indentless block sequences inside mappings,
// `[]` / `{}` for empty collections, `...` after a plain top-level scalar: `null\n...\n`). It is
// written out here rather than built on YAML::Emitter because yaml-cpp's emitter produces
// different text and, worse, text that reads back differently: it prints the strings "yes" and
// "1.5" plain (a YAML 1.1 reader gets a bool and a float), drops the `|-` chomping indicator
// (so "a\nb" reads back as "a\nb\n") and indents sequences inside mappings.
//
// Choices where the original is unclear or differs between its versions:
//   * map keys keep insertion order (PyYAML would sort them by default; the msgpack map order
//     is the server's and more useful, and non-string keys would not sort in Python anyway);
//   * non-ASCII text is written as UTF-8 (allow_unicode, as ruyaml does; PyYAML's safe_dump
//     default would escape it);
//   * tagged scalars (`!P`, `!bin`, `!hex`) are plain when plain is safe, as the reference shows
//     (`!P a.b`; PyYAML alone would quote them: `!P 'a.b'`); an empty one is written `''`;
//   * bytes are `!bin` whenever they are ASCII, even with control characters (the original tries
//     `decode("ascii")` only); the text is then double-quoted with escapes;
//   * ext values other than Paths have no representer in the original (it fails); we print
//     `!ext <code> <hex bytes aa:bb:…>`.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

#include "messages/literal.hpp"  // python_repr
#include "messages/value.hpp"

namespace moatkv {

/// The YAML document PyYAML's safe_dump(v, default_flow_style=False) would print, with the
/// representers described above. Always ends in a newline.
std::string yaml_dump(const value& v);

/// The original's `yprint`: ints and floats plainly (`123`, `1.5`; bools print as `True` /
/// `False` because they are ints in Python), str and bytes as Python repr (`'there'`, `b'..'`),
/// anything else as `yaml_dump`. Ends in a newline.
std::string yprint(const value& v);

/// A reply map without the keys in `drop` (the protocol's bookkeeping: seq, wseq, tock, …);
/// anything else is returned as is.
value without_keys(const value& msg, std::initializer_list<std::string_view> drop);

}  // namespace moatkv
