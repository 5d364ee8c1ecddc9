/* SPDX-License-Identifier: MIT */
/*
 * tbstream command: the one way text from outside reaches a terminal or a
 * JSON document.  A peer's message (an ABORT or ERROR text inside a
 * session's error), a file name, a path typed by a user: any of them may
 * hold bytes that drive a terminal (ESC, CSI, BEL, a newline that starts a
 * fake line, bidirectional overrides).  Everything the command prints goes
 * through esc_write(), which passes printable ASCII and well-formed UTF-8
 * of printable characters and spells out everything else.
 */
#ifndef TBSTREAM_ESCAPE_H
#define TBSTREAM_ESCAPE_H

#include <stddef.h>
#include <stdio.h>

enum esc_mode {
	ESC_TERM, /* \n, \t, \\, \xNN */
	ESC_JSON, /* the inside of a JSON string: \", \\, \u00NN, \\xNN */
};

size_t esc_text(char *out, size_t cap, const char *s, enum esc_mode mode);
void esc_write(FILE *f, const char *s, enum esc_mode mode);

#endif
