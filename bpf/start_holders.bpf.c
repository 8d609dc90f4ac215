// SPDX-License-Identifier: GPL-2.0
/* Walks every task's open files once, at start, and reports the pipes and
 * sockets that hold pages: memory no meminfo field counts, taken before
 * tracing began, so on no traced path. A task_file iterator (5.8+); a
 * tracing program, so kernels that refuse those (lockdown) cannot run it. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#include "apq_vmlinux.h"
#include "start_holders.h"

#define APQ_S_IFMT 00170000
#define APQ_S_IFSOCK 0140000
#define APQ_S_IFIFO 0010000
#define APQ_FMODE_WRITE 0x2

static void held_pipe(struct file *file, struct apq_held_record *record) {
  struct pipe_inode_info *pipe = BPF_CORE_READ(file, f_inode, i_pipe);
  if (!pipe) return;
  record->kind = APQ_HELD_PIPE;
  record->object = (__u64)pipe;
  /* Every occupied slot of the ring, [tail, head), holds one page. */
  record->pages = (__u32)(BPF_CORE_READ(pipe, head) - BPF_CORE_READ(pipe, tail));
  record->writer = (BPF_CORE_READ(file, f_mode) & APQ_FMODE_WRITE) != 0;
}

static void held_socket(struct file *file, struct apq_held_record *record) {
  struct socket *socket = BPF_CORE_READ(file, private_data);
  struct sock *sk = socket ? BPF_CORE_READ(socket, sk) : 0;
  if (!sk) return;
  record->kind = APQ_HELD_SOCKET;
  record->object = (__u64)sk;
  int received = BPF_CORE_READ(sk, sk_backlog.rmem_alloc.counter), queued = BPF_CORE_READ(sk, sk_wmem_queued);
  record->bytes = (received > 0 ? received : 0) + (queued > 0 ? queued : 0);
}

SEC("iter/task_file")
int apq_held_files(struct bpf_iter__task_file *ctx) {
  struct task_struct *task = ctx->task;
  struct file *file = ctx->file;
  if (!task || !file) return 0;
  struct apq_held_record record = {};
  unsigned int mode = BPF_CORE_READ(file, f_inode, i_mode) & APQ_S_IFMT;
  if (mode == APQ_S_IFIFO) {
    held_pipe(file, &record);
  } else if (mode == APQ_S_IFSOCK) {
    held_socket(file, &record);
  }
  if (record.kind == 0 || (record.pages == 0 && record.bytes == 0)) return 0;
  record.tgid = BPF_CORE_READ(task, tgid);
  BPF_CORE_READ_STR_INTO(&record.comm, task, group_leader, comm);
  bpf_seq_write(ctx->meta->seq, &record, sizeof(record));
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
