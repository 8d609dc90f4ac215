/* The few kernel types the tracker reads, declared for CO-RE: field offsets
 * are relocated against the running kernel's BTF at load time, so this stays
 * valid from 5.10 to current kernels without a generated vmlinux.h. */
#ifndef APQ_BPF_APQ_VMLINUX_H_
#define APQ_BPF_APQ_VMLINUX_H_

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

struct trace_entry {
  unsigned short type;
  unsigned char flags;
  unsigned char preempt_count;
  int pid;
};

struct trace_event_raw_mm_page_alloc {
  struct trace_entry ent;
  unsigned long pfn;
  unsigned int order;
};

struct trace_event_raw_mm_page_free {
  struct trace_entry ent;
  unsigned long pfn;
  unsigned int order;
};

/* Up to 6.3, a compound page keeps its order in compound_order of its
 * first tail page (inside an anonymous union member: CO-RE finds it). */
struct page {
  unsigned long flags;
  unsigned char compound_order;
};

/* Large folios keep their order in _folio_order (5.16..6.5) or in the low
 * byte of _flags_1 (6.6+). */
struct folio {
  unsigned long flags;
  unsigned char _folio_order;
  unsigned long _flags_1;
};

struct task_struct {
  struct task_struct *group_leader;
  char comm[16];
  int tgid;
};

/* What start_holders.bpf.c reads of open files. */
struct pipe_inode_info {
  unsigned int head;
  unsigned int tail;
};

struct inode {
  unsigned short i_mode;
  struct pipe_inode_info *i_pipe; /* in a union: valid for FIFOs and pipes */
};

struct file {
  struct inode *f_inode;
  unsigned int f_mode;
  void *private_data;
};

struct sock {
  struct {
    struct {
      int counter;
    } rmem_alloc;
  } sk_backlog;
  int sk_wmem_queued;
};

struct socket {
  struct sock *sk;
};

struct seq_file;
struct bpf_iter_meta {
  struct seq_file *seq;
};

struct bpf_iter__task_file {
  struct bpf_iter_meta *meta;
  struct task_struct *task;
  unsigned int fd;
  struct file *file;
};

#pragma clang attribute pop

/* Value relocated against the running kernel. */
enum pageflags { PG_head = 16 };

#endif /* APQ_BPF_APQ_VMLINUX_H_ */
