/* Host harness for packages-specs/grub/gptprio-core.c: runs the GRUB module's logic on a disk image file.
 *   gptprio-harness next DISK         prints "number=N uuid=GUID tries=T decremented=0|1"
 *   gptprio-harness label DISK LABEL  prints "number=N"
 * Exit 0 on success, 2 for usage, 3 with the core's message on stderr otherwise. */
#define _FILE_OFFSET_BITS 64
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gptprio-core.h"

static int
file_read (void *ctx, uint64_t offset, uint32_t length, void *buf)
{
  return pread (*(int *) ctx, buf, length, (off_t) offset) != (ssize_t) length;
}

static int
file_write (void *ctx, uint64_t offset, uint32_t length, const void *buf)
{
  return pwrite (*(int *) ctx, buf, length, (off_t) offset) != (ssize_t) length;
}

static void *
zalloc (size_t size)
{
  return calloc (1, size);
}

int
main (int argc, char **argv)
{
  struct gptprio_io io;
  struct stat st;
  enum gptprio_status status;
  int fd;

  if (argc < 3 || (strcmp (argv[1], "next") != 0 && strcmp (argv[1], "label") != 0) || (strcmp (argv[1], "label") == 0 && argc < 4))
    {
      fprintf (stderr, "usage: %s next DISK | label DISK LABEL\n", argv[0]);
      return 2;
    }
  fd = open (argv[2], O_RDWR);
  if (fd < 0 || fstat (fd, &st) != 0)
    {
      perror (argv[2]);
      return 3;
    }
  io.ctx = &fd;
  io.sector_size = 512;
  io.total_sectors = (uint64_t) st.st_size / 512;
  io.read = file_read;
  io.write = file_write;
  io.alloc = zalloc;
  io.free = free;

  if (strcmp (argv[1], "next") == 0)
    {
      struct gptprio_choice choice;
      char uuid[37];
      status = gptprio_next (&io, &choice);
      if (status == GPTPRIO_OK)
        {
          gptprio_format_guid (choice.unique_guid, uuid);
          printf ("number=%u uuid=%s tries=%u decremented=%d\n", choice.number, uuid, choice.tries_before, choice.decremented);
        }
    }
  else
    {
      uint32_t number = 0;
      status = gptprio_find_label (&io, argv[3], &number);
      if (status == GPTPRIO_OK)
        printf ("number=%u\n", number);
    }
  if (fsync (fd) != 0 || close (fd) != 0)
    {
      perror (argv[2]);
      return 3;
    }
  if (status != GPTPRIO_OK)
    {
      fprintf (stderr, "%s\n", gptprio_strerror (status));
      return 3;
    }
  return 0;
}
