/* Plain fixed-width types shared by start_holders.bpf.c and userspace. */
#ifndef APQ_BPF_START_HOLDERS_H_
#define APQ_BPF_START_HOLDERS_H_

#ifndef __BPF__
#include <linux/types.h>
#endif

/* What a record describes. */
#define APQ_HELD_PIPE 1u   /* the pages in a pipe's ring */
#define APQ_HELD_SOCKET 2u /* a socket's receive and send queues */

/* One open file of one task that holds hidden pages at start: a pipe, or a
 * socket with queued data. The same pipe or socket open in several tasks
 * (threads, forks, both ends of a pipe) comes once per (task, fd), with the
 * same `object`: userspace counts each object once. */
struct apq_held_record {
  __u64 object; /* the pipe_inode_info or sock: identity only */
  __u64 pages;  /* pipes: buffers in the ring, a page each */
  __u64 bytes;  /* sockets: sk_rmem_alloc + sk_wmem_queued (skb truesize) */
  __u32 kind;   /* APQ_HELD_* */
  __u32 tgid;
  __u32 writer; /* pipes: this file can write to it */
  __u32 reserved;
  char comm[16];
};

#endif /* APQ_BPF_START_HOLDERS_H_ */
