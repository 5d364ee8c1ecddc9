// SPDX-License-Identifier: MIT
/*
 * The command's escaping of text from outside (src/escape.c): what a
 * terminal would obey is spelled out, readable text passes unchanged.
 */
#include <string.h>

#include "../../src/escape.h"
#include "../tap.h"

static void one(const char *in, enum esc_mode m, const char *want,
		const char *what)
{
	char out[256];

	esc_text(out, sizeof(out), in, m);
	ok(!strcmp(out, want), "%s: '%s'", what, out);
}

int main(void)
{
	char small[8];

	one("plain text 1.2", ESC_TERM, "plain text 1.2", "ASCII passes");
	one("\033]0;title\007", ESC_TERM, "\\x1b]0;title\\x07",
	    "ESC and BEL are spelled out");
	one("a\nverified OK", ESC_TERM, "a\\nverified OK",
	    "a newline cannot start a line");
	one("\r\033[2K", ESC_TERM, "\\x0d\\x1b[2K", "nor a carriage return");
	one("back\\slash", ESC_TERM, "back\\\\slash", "a backslash is doubled");
	one("caf\xc3\xa9 \xe6\x97\xa5", ESC_TERM, "caf\xc3\xa9 \xe6\x97\xa5",
	    "UTF-8 text passes");
	one("\xc2\x9b" "2J", ESC_TERM, "\\xc2\\x9b2J",
	    "a C1 control (CSI) is spelled out");
	one("\xe2\x80\xae" "gnp.exe", ESC_TERM, "\\xe2\\x80\\xaegnp.exe",
	    "a bidirectional override is spelled out");
	one("\xff\xc3", ESC_TERM, "\\xff\\xc3", "invalid UTF-8 is spelled out");
	one("\xed\xa0\x80", ESC_TERM, "\\xed\\xa0\\x80",
	    "an encoded surrogate is spelled out");
	one("q\"\\\x01\xff", ESC_JSON, "q\\\"\\\\\\u0001\\\\xff",
	    "JSON: quotes, backslashes, controls, invalid bytes");
	esc_text(small, sizeof(small), "\033\033\033", ESC_TERM);
	ok(!strcmp(small, "\\x1b"), "a cut output ends at a whole escape");
	return tap_done();
}
