/* SPDX-License-Identifier: MIT */
/*
 * Internal helpers of libtbstream: paths under the system root, attribute
 * files, error messages, clocks.  Not part of the public API; every name
 * here has the tbsi_ prefix.
 */
#ifndef TBS_INTERNAL_H
#define TBS_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tbstream.h"

#define TBSI_DEVICES "sys/bus/thunderbolt/devices"
#define TBSI_CONFIGFS "sys/kernel/config/thunderbolt/stream"
#define TBSI_CONFIGFS_PARENT "sys/kernel/config/thunderbolt"

/* A path under the root; "/" and "" both mean the real root. */
__attribute__((format(printf, 4, 5))) int
tbsi_path(char *buf, size_t len, const char *root, const char *fmt, ...);

/* Reads a one-line attribute, trailing newline and blanks removed. */
int tbsi_read_str(const char *path, char *buf, size_t len);
int tbsi_read_int(const char *path, long *val);
/* Writes an attribute; on failure sets @err to name the value and path. */
int tbsi_write_attr(const char *path, const char *val, struct tbs_error *err);

__attribute__((format(printf, 3, 4))) int
tbsi_err(struct tbs_error *err, int code, const char *fmt, ...);

/* Writes all of @buf at @off (-1: at the file's position); 0 or -errno. */
int tbsi_write_all(int fd, const void *buf, size_t len, off_t off);

/* The end of member @m of struct type @t. */
#define tbsi_offsetofend(t, m) (offsetof(t, m) + sizeof(((t *)0)->m))

/*
 * Copies the caller's options @src (NULL: all defaults) into @dst, by the
 * convention at the top of tbstream.h: @min is the size of the struct's
 * first published layout.  Return: 0, -EINVAL, -E2BIG.
 */
int tbsi_opts_load(void *dst, size_t dst_size, const void *src, size_t min);

/*
 * TBSI_OPTS_LOAD(dst, src, first_last, last): tbsi_opts_load() for a
 * struct whose first published layout ended at member @first_last and
 * whose last member is now @last (there must be no padding after it).
 */
#define TBSI_OPTS_LOAD(dst, src, first_last, last)                             \
	({                                                                     \
		_Static_assert(sizeof(*(dst)) ==                               \
				       tbsi_offsetofend(typeof(*(dst)), last), \
			       "padding after the last member of an options "  \
			       "struct");                                      \
		tbsi_opts_load(dst, sizeof(*(dst)), src,                       \
			       tbsi_offsetofend(typeof(*(dst)), first_last));  \
	})

bool tbsi_exists(const char *path);
bool tbsi_is_dir(const char *path);
int64_t tbsi_now_ms(void);
void tbsi_sleep_ms(int ms);

/*
 * Fills in the holders of the @n streams of @arr, in one walk over /proc.
 * Return: 0 or -ENOMEM.
 */
int tbsi_holders_fill(struct tbs_stream *arr, int n);

/*
 * Locks (heal.c): flock(2) on ConfigFS directories; -errno on failure.
 * The "root" lock is on sys/kernel/config/thunderbolt.
 */
int tbsi_lock_root(const char *root, int how);
/*
 * The exclusive lock of a bring-up on an existing stream's directory:
 * -ENOENT when there is none, -EBUSY when another bring-up holds it.
 */
int tbsi_stream_lock(const char *root, const char *service, const char *name);
void tbsi_unlock(int fd);
/*
 * tbs_stream_create(), and *@lockfd its exclusive lock: -EEXIST when the
 * stream exists.
 */
int tbsi_stream_create_locked(const char *root, const char *service,
			      const char *name, int *lockfd,
			      struct tbs_error *err);
/* Releases @lockfd and removes the stream, with no process in between. */
int tbsi_stream_remove_locked(const char *root, const char *service,
			      const char *name, int lockfd,
			      struct tbs_error *err);
/*
 * Removes the streams on @service (but @skip) that no process uses and
 * the peer does not advertise; with @settle_ms > 0, only those it does not
 * advertise after that long either.  Return: how many, or -errno.
 */
int tbsi_heal(const char *root, const char *service, const char *skip,
	      int settle_ms);

/*
 * Fills @err with why the stream driver's ConfigFS directory is missing
 * (kernel, bus, module, ConfigFS: see diag.c).  Return: its code.
 */
int tbsi_no_driver(const char *root, struct tbs_error *err);
/* Likewise, why no peer offers the stream service (cable, its driver). */
int tbsi_no_peer(const char *root, struct tbs_error *err);
/* Likewise, why there is no Thunderbolt/USB4 bus (its driver, the port). */
int tbsi_no_bus(const char *root, struct tbs_error *err);
/*
 * The first network interface of IP over Thunderbolt (thunderbolt*) and
 * its operstate; false when there is none.
 */
bool tbsi_net_iface(const char *root, char *name, size_t len, char *state,
		    size_t slen);

/**
 * tbsi_bus_attr() - one attribute of a device of the Thunderbolt bus
 * @root: system root
 * @dev:  the device's entry, "D-R" or "D-R.I"
 * @attr: the attribute (sys/bus/thunderbolt/devices/@dev/@attr)
 * @buf:  receives its value; "" when it is missing or unreadable
 * @len:  size of @buf
 */
void tbsi_bus_attr(const char *root, const char *dev, const char *attr,
		   char *buf, size_t len);

/**
 * struct tbsi_xdomains - a growing array with one entry per XDomain "D-R"
 * @arr:  the entries, @size bytes each; NULL at first, free() it after
 * @n:    how many entries
 * @size: the size of an entry
 * @off:  where in an entry its XDomain name lies, a char array of @len
 * @len:  its size
 *
 * Initialise with TBSI_XDOMAINS_INIT(type, member).
 */
struct tbsi_xdomains {
	void *arr;
	int n;
	size_t size;
	size_t off;
	size_t len;
};

#define TBSI_XDOMAINS_INIT(type, member)                                       \
	{                                                                      \
		.size = sizeof(type), .off = offsetof(type, member),           \
		.len = sizeof(((type *)0)->member),                            \
	}

/**
 * tbsi_xdomain_slot() - the entry of XDomain "@domain-@route" in @l
 * @l:      the array
 * @domain: the XDomain's domain
 * @route:  its route
 *
 * Appends a zeroed entry with that name when there is none.
 *
 * Return: the entry, or NULL when out of memory.
 */
void *tbsi_xdomain_slot(struct tbsi_xdomains *l, unsigned int domain,
			uint64_t route);

/**
 * tbsi_bus_scan() - walks the Thunderbolt bus directory
 * @root: system root
 * @l:    the array @fn fills, with tbsi_xdomain_slot()
 * @fn:   called as @fn(@root, entry, @l) for every entry, until it
 *        returns nonzero
 * @err:  receives the reason of a failure, may be NULL
 *
 * Return: 0; -ENOMEM from @fn (with @l's array freed); or the code of
 * tbsi_no_bus() when there is no bus.  @err says why.
 */
int tbsi_bus_scan(const char *root, struct tbsi_xdomains *l,
		  int (*fn)(const char *root, const char *ent,
			    struct tbsi_xdomains *l),
		  struct tbs_error *err);

/* Parses "D-R" (XDomain) or "D-R.I" (service); @index NULL for XDomain. */
int tbsi_parse_router(const char *s, unsigned int *domain, uint64_t *route,
		      unsigned int *index);
bool tbsi_valid_name(const char *name);
/* Whether @name can be a network interface's name (transport.c). */
bool tbsi_valid_ifname(const char *name);

#endif
