// SPDX-License-Identifier: MIT
/*
 * Small helpers shared by the library: paths under the system root,
 * attribute files, error messages and the clock.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

int tbsi_path(char *buf, size_t len, const char *root, const char *fmt, ...)
{
	size_t rl = root ? strlen(root) : 0;
	va_list ap;
	int n, m;

	while (rl > 0 && root[rl - 1] == '/')
		rl--;
	n = snprintf(buf, len, "%.*s/", (int)rl, rl ? root : "");
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	va_start(ap, fmt);
	m = vsnprintf(buf + n, len - n, fmt, ap);
	va_end(ap);
	if (m < 0 || (size_t)(n + m) >= len)
		return -ENAMETOOLONG;
	return 0;
}

int tbsi_read_str(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0) {
		n = -errno;
		close(fd);
		return n;
	}
	close(fd);
	while (n > 0 && isspace((unsigned char)buf[n - 1]))
		n--;
	buf[n] = '\0';
	return 0;
}

int tbsi_read_int(const char *path, long *val)
{
	char buf[64], *end;
	int ret;

	ret = tbsi_read_str(path, buf, sizeof(buf));
	if (ret)
		return ret;
	errno = 0;
	*val = strtol(buf, &end, 0);
	if (errno || end == buf || *end)
		return -EINVAL;
	return 0;
}

int tbsi_write_attr(const char *path, const char *val, struct tbs_error *err)
{
	size_t len = strlen(val);
	ssize_t n;
	int fd, ret = 0;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		goto err_msg;
	}
	n = write(fd, val, len);
	if (n < 0)
		ret = -errno;
	else if ((size_t)n != len)
		ret = -EIO;
	if (close(fd) && !ret)
		ret = -errno;
	if (!ret)
		return 0;
err_msg:
	return tbsi_err(err, ret, "could not write '%s' to '%s': %s", val, path,
			strerror(-ret));
}

/**
 * tbsi_write_all() - write all of @buf, retrying short writes
 * @fd:  the file
 * @buf: the bytes
 * @len: how many
 * @off: where, or -1 for the file's position
 *
 * Return: 0 or a negative errno (-EIO when the file takes nothing).
 */
int tbsi_write_all(int fd, const void *buf, size_t len, off_t off)
{
	const uint8_t *p = buf;
	ssize_t n;

	while (len) {
		n = off < 0 ? write(fd, p, len) : pwrite(fd, p, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
		if (off >= 0)
			off += n;
	}
	return 0;
}

int tbsi_err(struct tbs_error *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return code;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return code;
}

int tbsi_opts_load(void *dst, size_t dst_size, const void *src, size_t min)
{
	const unsigned char *p = src;
	size_t size, i;

	memset(dst, 0, dst_size);
	if (src) {
		memcpy(&size, src, sizeof(size));
		if (size < min)
			return -EINVAL;
		for (i = dst_size; i < size; i++)
			if (p[i])
				return -E2BIG;
		memcpy(dst, src, size < dst_size ? size : dst_size);
	}
	memcpy(dst, &dst_size, sizeof(dst_size));
	return 0;
}

bool tbsi_exists(const char *path)
{
	return access(path, F_OK) == 0;
}

bool tbsi_is_dir(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

int64_t tbsi_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tbsi_sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000,
			       .tv_nsec = (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static int parse_uint(const char **s, int base, uint64_t *val)
{
	char *end;

	if (!isxdigit((unsigned char)**s))
		return -EINVAL;
	errno = 0;
	*val = strtoull(*s, &end, base);
	if (errno)
		return -EINVAL;
	*s = end;
	return 0;
}

int tbsi_parse_router(const char *s, unsigned int *domain, uint64_t *route,
		      unsigned int *index)
{
	uint64_t d, i;

	if (parse_uint(&s, 10, &d) || d > 255 || *s++ != '-')
		return -EINVAL;
	if (parse_uint(&s, 16, route))
		return -EINVAL;
	*domain = d;
	if (!index)
		return *s ? -EINVAL : 0;
	if (*s++ != '.' || parse_uint(&s, 10, &i) || *s || i > 255)
		return -EINVAL;
	*index = i;
	return 0;
}

bool tbsi_valid_name(const char *name)
{
	size_t len = strlen(name);

	if (!len || len > TBS_NAME_MAX || name[0] == '.')
		return false;
	return !strchr(name, '/');
}
