// SPDX-License-Identifier: MIT
/*
 * tbstream command: escaping of text from outside (see escape.h).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "escape.h"

/*
 * Length of the UTF-8 sequence at @p (1 to 4) if it is well formed and
 * encodes a character that is safe to show, else 0: C1 controls
 * (U+0080..U+009F, which some terminals obey as ESC sequences) and the
 * bidirectional controls (U+200E, U+200F, U+202A..U+202E, U+2066..U+2069)
 * are not.
 */
static size_t utf8_safe(const unsigned char *p)
{
	uint32_t c;
	size_t n, i;

	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2, c = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3, c = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4, c = p[0] & 0x07;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (p[i] & 0x3f);
	}
	if ((n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10ffff)) ||
	    (c >= 0xd800 && c <= 0xdfff) || c <= 0x9f || c == 0x200e ||
	    c == 0x200f || (c >= 0x202a && c <= 0x202e) ||
	    (c >= 0x2066 && c <= 0x2069))
		return 0;
	return n;
}

/* The spelling of one byte that is not shown as itself. */
static int spell(char *b, size_t cap, unsigned char c, enum esc_mode mode)
{
	if (mode == ESC_JSON) {
		if (c == '"' || c == '\\')
			return snprintf(b, cap, "\\%c", c);
		if (c < 0x20)
			return snprintf(b, cap, "\\u%04x", c);
		return snprintf(b, cap, "\\\\x%02x", c);
	}
	if (c == '\n')
		return snprintf(b, cap, "\\n");
	if (c == '\t')
		return snprintf(b, cap, "\\t");
	if (c == '\\')
		return snprintf(b, cap, "\\\\");
	return snprintf(b, cap, "\\x%02x", c);
}

/**
 * esc_text() - escape @s for a terminal or a JSON string
 * @out:  receives the text, always terminated (cut at a whole escape)
 * @cap:  size of @out
 * @s:    the text, from anywhere
 * @mode: ESC_TERM or ESC_JSON
 *
 * Return: the length written.
 */
size_t esc_text(char *out, size_t cap, const char *s, enum esc_mode mode)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0, n;
	char b[8];
	int k;

	if (!cap)
		return 0;
	while (*p) {
		n = *p >= 0x80 ? utf8_safe(p) : 0;
		if (n) {
			memcpy(b, p, n);
			k = (int)n;
		} else if (*p >= 0x20 && *p < 0x7f && *p != '\\' &&
			   (mode == ESC_TERM || *p != '"')) {
			b[0] = (char)*p;
			k = 1;
			n = 1;
		} else {
			k = spell(b, sizeof(b), *p, mode);
			n = 1;
		}
		if (o + (size_t)k >= cap)
			break;
		memcpy(out + o, b, (size_t)k);
		o += (size_t)k;
		p += n;
	}
	out[o] = '\0';
	return o;
}

/* Writes @s to @f, escaped. */
void esc_write(FILE *f, const char *s, enum esc_mode mode)
{
	char chunk[513], buf[6 * 513];
	size_t left = strlen(s), in;

	while (left) {
		in = left < 512 ? left : 512;
		/* Never split a UTF-8 sequence between two chunks. */
		while (in > 1 && in < left &&
		       ((unsigned char)s[in] & 0xc0) == 0x80)
			in--;
		memcpy(chunk, s, in);
		chunk[in] = '\0';
		esc_text(buf, sizeof(buf), chunk, mode);
		fputs(buf, f);
		s += in;
		left -= in;
	}
}
