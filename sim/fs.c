// SPDX-License-Identifier: MIT
/*
 * tbsim: the FUSE low-level operations.
 *
 * Requests are served by a pool of threads; a request that must wait (an
 * open for an absent peer, a read with no data, a write into a full ring)
 * sleeps on the fabric's condition variables, and an interrupt from the
 * kernel (a signal to the caller) wakes it with EINTR.  Replies carrying
 * data are sent outside the fabric lock.
 *
 * Devices are regular files opened with direct I/O, so that one read or
 * write of a program is one request of up to 1 MiB.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <fuse_lowlevel.h>

#include "fabric.h"
#include "fs.h"

#define MAX_IO (1024 * 1024)
#define READ_IOV_MAX 1000
/* Set in the file handle of a device, so fs_writev() can spot its open. */
#define DEV_TAG (1ULL << 62)
/* fuse_kernel.h, which libfuse does not install */
#define FOPEN_STREAM (1u << 4)
#define FOPEN_PARALLEL_DIRECT_WRITES (1u << 6)

struct out_header {
	uint32_t len;
	int32_t error;
	uint64_t unique;
};

/*
 * A snapshot of a text file or a directory, taken at open.  File handles
 * carry an id, not a pointer: a handle the kernel should no longer use
 * finds nothing (EBADF) instead of freed memory.
 */
struct textbuf {
	struct list_head link;
	uint64_t id;
	char *data;
	size_t len;
};

static pthread_mutex_t text_lock = PTHREAD_MUTEX_INITIALIZER;
static struct list_head texts = { &texts, &texts };
static uint64_t next_text_id = 1;

static uint64_t text_register(struct textbuf *b)
{
	pthread_mutex_lock(&text_lock);
	b->id = next_text_id++;
	list_add_tail(&b->link, &texts);
	pthread_mutex_unlock(&text_lock);
	return b->id;
}

/* Under text_lock. */
static struct textbuf *text_find(uint64_t id)
{
	struct list_head *p;

	list_for_each(p, &texts) {
		struct textbuf *b = list_entry(p, struct textbuf, link);

		if (b->id == id)
			return b;
	}
	return NULL;
}

static void text_release(uint64_t id)
{
	struct textbuf *b;

	pthread_mutex_lock(&text_lock);
	b = text_find(id);
	if (b)
		list_del(&b->link);
	pthread_mutex_unlock(&text_lock);
	if (b) {
		free(b->data);
		free(b);
	}
}

static time_t start_time;

static struct fabric *fab_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct handle *dev_handle(struct fuse_file_info *fi)
{
	return (struct handle *)(uintptr_t)(fi->fh & ~DEV_TAG);
}

static void fill_attr(const struct node *n, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = n->ino;
	st->st_mode = n->mode;
	st->st_nlink = S_ISDIR(n->mode) ? 2 : 1;
	st->st_blksize = 4096;
	if ((n->kind == N_TEXT || n->kind == N_LINK) && n->text)
		st->st_size = (off_t)strlen(n->text);
	else if (n->kind == N_ATTR)
		st->st_size = 4096;
	st->st_atime = st->st_mtime = st->st_ctime = start_time;
}

static void reply_node(fuse_req_t req, struct node *n)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	e.ino = n->ino;
	e.generation = 1;
	fill_attr(n, &e.attr);
	n->nlookup++;
	fuse_reply_entry(req, &e);
}

static void fs_init(void *userdata, struct fuse_conn_info *conn)
{
	conn->max_write = MAX_IO;
	conn->max_readahead = 0;
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	conn->want &= ~(unsigned int)FUSE_CAP_SPLICE_READ;
	start_time = time(NULL);
}

static void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fabric *fab = fab_of(req);
	struct node *p, *c = NULL;
	int err = 0;

	pthread_mutex_lock(&fab->lock);
	p = node_get(&fab->nodes, parent);
	if (!p || p->unlinked)
		err = ENOENT;
	else if (!S_ISDIR(p->mode))
		err = ENOTDIR;
	else if (!(c = node_child(p, name)))
		err = ENOENT;
	if (!err)
		reply_node(req, c);
	pthread_mutex_unlock(&fab->lock);
	if (err)
		fuse_reply_err(req, err);
}

static void fs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct fabric *fab = fab_of(req);
	char *target = NULL;
	struct node *n;

	pthread_mutex_lock(&fab->lock);
	n = node_get(&fab->nodes, ino);
	if (n && n->kind == N_LINK && n->text)
		target = strdup(n->text);
	pthread_mutex_unlock(&fab->lock);
	if (target)
		fuse_reply_readlink(req, target);
	else
		fuse_reply_err(req, n ? EINVAL : ENOENT);
	free(target);
}

static void fs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct fabric *fab = fab_of(req);
	struct node *n;

	pthread_mutex_lock(&fab->lock);
	n = node_get(&fab->nodes, ino);
	if (n)
		node_forget(&fab->nodes, n, nlookup);
	pthread_mutex_unlock(&fab->lock);
	fuse_reply_none(req);
}

static void fs_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	struct fabric *fab = fab_of(req);

	pthread_mutex_lock(&fab->lock);
	for (size_t i = 0; i < count; i++) {
		struct node *n = node_get(&fab->nodes, forgets[i].ino);

		if (n)
			node_forget(&fab->nodes, n, forgets[i].nlookup);
	}
	pthread_mutex_unlock(&fab->lock);
	fuse_reply_none(req);
}

static void fs_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct fabric *fab = fab_of(req);
	struct node *n;
	struct stat st;

	pthread_mutex_lock(&fab->lock);
	n = node_get(&fab->nodes, ino);
	if (n)
		fill_attr(n, &st);
	pthread_mutex_unlock(&fab->lock);
	if (n)
		fuse_reply_attr(req, &st, 0);
	else
		fuse_reply_err(req, ENOENT);
}

/* Truncation (a shell's ">") is accepted and ignored, as sysfs does. */
static void fs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	if (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID |
		      FUSE_SET_ATTR_GID)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	fs_getattr(req, ino, fi);
}

/* ---- directories -------------------------------------------------- */

static void dir_add(fuse_req_t req, struct textbuf *b, const char *name,
		    const struct node *n)
{
	struct stat st = { .st_ino = n->ino, .st_mode = n->mode };
	size_t need = fuse_add_direntry(req, NULL, 0, name, NULL, 0);
	char *p = realloc(b->data, b->len + need);

	if (!p)
		return;
	b->data = p;
	fuse_add_direntry(req, p + b->len, need, name, &st,
			  (off_t)(b->len + need));
	b->len += need;
}

static void fs_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct fabric *fab = fab_of(req);
	struct textbuf *b = calloc(1, sizeof(*b));
	struct list_head *p;
	struct node *n;

	if (!b) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pthread_mutex_lock(&fab->lock);
	n = node_get(&fab->nodes, ino);
	if (n && S_ISDIR(n->mode)) {
		dir_add(req, b, ".", n);
		dir_add(req, b, "..", n->parent ? n->parent : n);
		list_for_each(p, &n->children) {
			struct node *c = list_entry(p, struct node, sibling);

			dir_add(req, b, c->name, c);
		}
	}
	pthread_mutex_unlock(&fab->lock);
	if (!n || !S_ISDIR(n->mode)) {
		free(b);
		fuse_reply_err(req, n ? ENOTDIR : ENOENT);
		return;
	}
	fi->fh = text_register(b);
	fuse_reply_open(req, fi);
}

static void reply_slice(fuse_req_t req, uint64_t id, size_t size, off_t off)
{
	struct textbuf *b;

	pthread_mutex_lock(&text_lock);
	b = text_find(id);
	if (!b)
		fuse_reply_err(req, EBADF);
	else if (off < 0 || (size_t)off >= b->len)
		fuse_reply_buf(req, NULL, 0);
	else
		fuse_reply_buf(req, b->data + off,
			       b->len - (size_t)off < size ?
				       b->len - (size_t)off :
				       size);
	pthread_mutex_unlock(&text_lock);
}

/* A record cut at the end is ignored by the kernel and asked for again. */
static void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
		       off_t off, struct fuse_file_info *fi)
{
	reply_slice(req, fi->fh, size, off);
}

static void fs_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	text_release(fi->fh);
	fuse_reply_err(req, 0);
}

static void fs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	struct fabric *fab = fab_of(req);
	struct node *p;
	int err = -EPERM;

	pthread_mutex_lock(&fab->lock);
	p = node_get(&fab->nodes, parent);
	if (p && p->role == D_STREAM_ROOT && p->host)
		err = service_mkdir(fab, p->host, name);
	else if (p && p->role == D_SERVICE && p->svc)
		err = stream_mkdir(fab, p->svc, name);
	if (!err)
		reply_node(req, node_child(p, name));
	pthread_mutex_unlock(&fab->lock);
	if (err)
		fuse_reply_err(req, -err);
}

static void fs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fabric *fab = fab_of(req);
	struct node *p, *c = NULL;
	int err = -ENOENT;

	pthread_mutex_lock(&fab->lock);
	p = node_get(&fab->nodes, parent);
	if (p)
		c = node_child(p, name);
	if (c && c->role == D_SERVICE)
		err = service_rmdir(fab, c->svc);
	else if (c && c->role == D_STREAM)
		err = stream_rmdir(fab, c->stream);
	else if (c)
		err = S_ISDIR(c->mode) ? -EPERM : -ENOTDIR;
	pthread_mutex_unlock(&fab->lock);
	fuse_reply_err(req, -err);
}

static void fs_eperm_entry(fuse_req_t req, fuse_ino_t parent,
			   const char *name, mode_t mode, dev_t rdev)
{
	fuse_reply_err(req, EPERM);
}

static void fs_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	fuse_reply_err(req, EPERM);
}

static void fs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, EPERM);
}

/* ---- interrupts ---------------------------------------------------- */

static void on_interrupt(fuse_req_t req, void *data)
{
	struct waiter *w = data;
	struct fabric *fab = fab_of(req);

	pthread_mutex_lock(&fab->lock);
	w->interrupted = true;
	if (w->cond)
		pthread_cond_broadcast(w->cond);
	pthread_mutex_unlock(&fab->lock);
}

/* ---- files ---------------------------------------------------------- */

static int snapshot(struct fabric *fab, struct node *n, struct textbuf *b)
{
	char tmp[64];
	int len;

	switch (n->kind) {
	case N_TEXT:
		b->data = strdup(n->text ? n->text : "");
		b->len = b->data ? strlen(b->data) : 0;
		break;
	case N_ATTR:
		if (!n->stream)
			return -ENODEV;
		len = stream_attr_show(n->stream, n->attr, tmp, sizeof(tmp));
		b->data = strndup(tmp, (size_t)len);
		b->len = (size_t)len;
		break;
	case N_CONTROL:
		return fabric_status(fab, &b->data, &b->len);
	default:
		return -EISDIR;
	}
	return b->data ? 0 : -ENOMEM;
}

static int open_text(struct fabric *fab, struct node *n,
		     struct fuse_file_info *fi)
{
	int acc = fi->flags & O_ACCMODE;
	struct textbuf *b;
	int err;

	if (acc != O_RDONLY &&
	    (n->kind == N_TEXT || (n->kind == N_ATTR && !(n->mode & 0200))))
		return -EACCES;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	if (acc != O_WRONLY) {
		err = snapshot(fab, n, b);
		if (err) {
			free(b);
			return err;
		}
	}
	fi->fh = text_register(b);
	fi->direct_io = 1;
	return 0;
}

static void open_dev(fuse_req_t req, struct fabric *fab, fuse_ino_t ino,
		     struct fuse_file_info *fi)
{
	struct waiter w = { 0 };
	struct handle *h = NULL;
	struct node *n;
	int err = -ENODEV;

	fuse_req_interrupt_func(req, on_interrupt, &w);
	pthread_mutex_lock(&fab->lock);
	n = node_get(&fab->nodes, ino);
	if (n && n->stream && !n->unlinked)
		err = dev_open(fab, n->stream, fi->flags & O_NONBLOCK, &w, &h);
	pthread_mutex_unlock(&fab->lock);
	fuse_req_interrupt_func(req, NULL, NULL);
	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	fi->fh = (uintptr_t)h | DEV_TAG;
	fi->direct_io = 1;
	fi->nonseekable = 1;
	if (fuse_reply_open(req, fi)) {
		pthread_mutex_lock(&fab->lock);
		dev_release(fab, h);
		pthread_mutex_unlock(&fab->lock);
	}
}

static void fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fabric *fab = fab_of(req);
	struct node *n;
	int err;

	pthread_mutex_lock(&fab->lock);
	n = node_get(&fab->nodes, ino);
	if (n && n->kind == N_DEV) {
		pthread_mutex_unlock(&fab->lock);
		open_dev(req, fab, ino, fi);
		return;
	}
	err = n ? open_text(fab, n, fi) : -ENOENT;
	pthread_mutex_unlock(&fab->lock);
	if (err)
		fuse_reply_err(req, -err);
	else
		fuse_reply_open(req, fi);
}

static bool is_dev(struct fuse_file_info *fi)
{
	return fi->fh & DEV_TAG;
}

static void read_dev(fuse_req_t req, struct fabric *fab, size_t size,
		     struct fuse_file_info *fi)
{
	static __thread struct frame *frames[READ_IOV_MAX];
	static __thread struct iovec iov[READ_IOV_MAX + 1];
	static __thread char tail[TB_FRAME_MAX];
	struct waiter w = { 0 };
	unsigned int nframes = 0, k;
	size_t tail_len = 0;
	ssize_t n;

	fuse_req_interrupt_func(req, on_interrupt, &w);
	pthread_mutex_lock(&fab->lock);
	n = dev_read(fab, dev_handle(fi), size, fi->flags & O_NONBLOCK, &w,
		     frames, &nframes, tail, &tail_len);
	pthread_mutex_unlock(&fab->lock);
	fuse_req_interrupt_func(req, NULL, NULL);
	if (n < 0) {
		fuse_reply_err(req, (int)-n);
		return;
	}
	for (k = 0; k < nframes; k++) {
		iov[k].iov_base = frames[k]->data + frames[k]->off;
		iov[k].iov_len = (size_t)(frames[k]->len - frames[k]->off);
	}
	if (tail_len) {
		iov[k].iov_base = tail;
		iov[k++].iov_len = tail_len;
	}
	fuse_reply_iov(req, iov, (int)k);
	for (k = 0; k < nframes; k++)
		frame_free(fab, frames[k]);
}

static void fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	if (is_dev(fi))
		read_dev(req, fab_of(req), size, fi);
	else
		reply_slice(req, fi->fh, size, off);
}

static ssize_t write_dev(struct fabric *fab, struct fuse_file_info *fi,
			 const char *buf, size_t size, struct waiter *w)
{
	static __thread struct frame *frames[MAX_IO / TB_FRAME_MAX + 1];
	struct handle *h = dev_handle(fi);
	unsigned int got = 0;
	size_t bytes = 0;
	ssize_t k;

	pthread_mutex_lock(&fab->lock);
	k = dev_write_reserve(fab, h, size, fi->flags & O_NONBLOCK, w);
	pthread_mutex_unlock(&fab->lock);
	if (k <= 0)
		return k;
	if (k > (ssize_t)(sizeof(frames) / sizeof(frames[0])))
		k = sizeof(frames) / sizeof(frames[0]);
	while (got < (unsigned int)k && bytes < size) {
		size_t len = size - bytes < TB_FRAME_MAX ? size - bytes :
							   TB_FRAME_MAX;
		struct frame *f = frame_alloc(fab);

		if (!f)
			break;
		f->len = (uint16_t)len;
		memcpy(f->data, buf + bytes, len);
		frames[got++] = f;
		bytes += len;
	}
	pthread_mutex_lock(&fab->lock);
	k = dev_write_commit(fab, h, frames, got, (unsigned int)k, bytes);
	pthread_mutex_unlock(&fab->lock);
	return k == 0 && size ? -ENOMEM : k;
}

static void fs_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fabric *fab = fab_of(req);
	struct waiter w = { 0 };
	struct node *n;
	ssize_t res;

	if (is_dev(fi)) {
		fuse_req_interrupt_func(req, on_interrupt, &w);
		res = write_dev(fab, fi, buf, size, &w);
		fuse_req_interrupt_func(req, NULL, NULL);
	} else {
		pthread_mutex_lock(&fab->lock);
		n = node_get(&fab->nodes, ino);
		if (n && n->kind == N_CONTROL)
			res = control_write(fab, buf, size);
		else if (n && n->kind == N_ATTR && n->stream)
			res = stream_attr_store(fab, n->stream, n->attr, buf,
						size);
		else
			res = -ENODEV;
		pthread_mutex_unlock(&fab->lock);
		if (!res)
			res = (ssize_t)size;
	}
	if (res < 0)
		fuse_reply_err(req, (int)-res);
	else
		fuse_reply_write(req, (size_t)res);
}

static void fs_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		    struct fuse_pollhandle *ph)
{
	struct fabric *fab = fab_of(req);
	unsigned int ev;

	if (!is_dev(fi)) {
		if (ph)
			fuse_pollhandle_destroy(ph);
		fuse_reply_poll(req, POLLIN | POLLOUT);
		return;
	}
	pthread_mutex_lock(&fab->lock);
	ev = dev_poll(fab, dev_handle(fi), ph);
	pthread_mutex_unlock(&fab->lock);
	fuse_reply_poll(req, ev);
}

static void fs_flush(fuse_req_t req, fuse_ino_t ino,
		     struct fuse_file_info *fi)
{
	struct fabric *fab = fab_of(req);

	if (is_dev(fi)) {
		pthread_mutex_lock(&fab->lock);
		dev_flush(fab, dev_handle(fi));
		pthread_mutex_unlock(&fab->lock);
	}
	fuse_reply_err(req, 0);
}

static void fs_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct fabric *fab = fab_of(req);

	if (is_dev(fi)) {
		pthread_mutex_lock(&fab->lock);
		dev_release(fab, dev_handle(fi));
		pthread_mutex_unlock(&fab->lock);
	} else {
		text_release(fi->fh);
	}
	fuse_reply_err(req, 0);
}

const struct fuse_lowlevel_ops tbsim_ops = {
	.init = fs_init,
	.lookup = fs_lookup,
	.readlink = fs_readlink,
	.forget = fs_forget,
	.forget_multi = fs_forget_multi,
	.getattr = fs_getattr,
	.setattr = fs_setattr,
	.opendir = fs_opendir,
	.readdir = fs_readdir,
	.releasedir = fs_releasedir,
	.mkdir = fs_mkdir,
	.rmdir = fs_rmdir,
	.mknod = fs_eperm_entry,
	.create = fs_create,
	.unlink = fs_unlink,
	.open = fs_open,
	.read = fs_read,
	.write = fs_write,
	.poll = fs_poll,
	.flush = fs_flush,
	.release = fs_release,
};

/*
 * Opens of devices are answered with FOPEN_STREAM, which libfuse 3.14
 * cannot set: without it the kernel serialises read(2) and write(2) on one
 * file descriptor shared by threads (the file position lock), and a reader
 * blocked on a quiet stream would hold up a writer on the same descriptor,
 * which a real character device never does.
 */
static ssize_t fs_writev(int fd, struct iovec *iov, int count, void *data)
{
	if (count == 2 && iov[0].iov_len == sizeof(struct out_header) &&
	    iov[1].iov_len == 16) {
		const struct out_header *oh = iov[0].iov_base;
		uint64_t fh;
		uint32_t flags;

		memcpy(&fh, iov[1].iov_base, sizeof(fh));
		if (!oh->error && (fh & DEV_TAG)) {
			memcpy(&flags, (char *)iov[1].iov_base + 8, 4);
			flags |= FOPEN_STREAM | FOPEN_PARALLEL_DIRECT_WRITES;
			memcpy((char *)iov[1].iov_base + 8, &flags, 4);
		}
	}
	return writev(fd, iov, count);
}

static ssize_t fs_readfd(int fd, void *buf, size_t len, void *data)
{
	return read(fd, buf, len);
}

const struct fuse_custom_io tbsim_io = {
	.writev = fs_writev,
	.read = fs_readfd,
};
