/* GRUB commands for Bottlerocket's A/B boot:
 *   gptprio.next -d DEVVAR -u UUIDVAR [DEVICE]  choose the BOOT partition, use up a try, set the variables
 *   gptprio.label -s VAR LABEL [DEVICE]          set VAR to the partition named LABEL (e.g. PRIVATE)
 * DEVICE defaults to the disk of $root. The logic is in gptprio-core.c. */
#include <grub/device.h>
#include <grub/disk.h>
#include <grub/dl.h>
#include <grub/env.h>
#include <grub/err.h>
#include <grub/extcmd.h>
#include <grub/i18n.h>
#include <grub/misc.h>
#include <grub/mm.h>

#include "gptprio-core.h"

GRUB_MOD_LICENSE ("GPLv3+");

static int
disk_read (void *ctx, gptprio_u64 offset, gptprio_u32 length, void *buf)
{
  return grub_disk_read (ctx, offset >> GRUB_DISK_SECTOR_BITS, offset & (GRUB_DISK_SECTOR_SIZE - 1), length, buf) != GRUB_ERR_NONE;
}

static int
disk_write (void *ctx, gptprio_u64 offset, gptprio_u32 length, const void *buf)
{
  return grub_disk_write (ctx, offset >> GRUB_DISK_SECTOR_BITS, offset & (GRUB_DISK_SECTOR_SIZE - 1), length, buf) != GRUB_ERR_NONE;
}

static void *
mem_alloc (gptprio_size size)
{
  return grub_zalloc (size);
}

/* Opens the whole disk named by DEVICE (or by $root), without its partition part. */
static grub_disk_t
open_disk (const char *device, char **disk_name)
{
  const char *name = device ? device : grub_env_get ("root");
  grub_size_t length;
  grub_disk_t disk;
  char *comma;

  if (!name || !*name)
    {
      grub_error (GRUB_ERR_BAD_ARGUMENT, N_("no device given and $root is not set"));
      return 0;
    }
  if (*name == '(')
    name++;
  length = grub_strlen (name);
  if (length > 0 && name[length - 1] == ')')
    length--;
  *disk_name = grub_strndup (name, length);
  if (!*disk_name)
    return 0;
  comma = grub_strchr (*disk_name, ',');
  if (comma)
    *comma = '\0';
  disk = grub_disk_open (*disk_name);
  if (!disk)
    grub_free (*disk_name);
  return disk;
}

static void
init_io (struct gptprio_io *io, grub_disk_t disk)
{
  grub_uint64_t sectors = grub_disk_native_sectors (disk);
  io->ctx = disk;
  io->sector_size = 1U << disk->log_sector_size;
  io->total_sectors = sectors == GRUB_DISK_SIZE_UNKNOWN ? 0 : sectors;
  io->read = disk_read;
  io->write = disk_write;
  io->alloc = mem_alloc;
  io->free = grub_free;
}

static const struct grub_arg_option next_options[] = {
  {"set-device", 'd', 0, N_("Set a variable to the chosen partition's device name."), N_("VARNAME"), ARG_TYPE_STRING},
  {"set-uuid", 'u', 0, N_("Set a variable to the chosen partition's unique GUID."), N_("VARNAME"), ARG_TYPE_STRING},
  {0, 0, 0, 0, 0, 0}
};

static grub_err_t
grub_cmd_next (grub_extcmd_context_t ctxt, int argc, char **args)
{
  struct grub_arg_list *state = ctxt->state;
  struct gptprio_io io;
  struct gptprio_choice choice;
  enum gptprio_status status;
  char uuid[37], *disk_name, *device_name;
  grub_disk_t disk;

  if (!state[0].set || !state[1].set)
    return grub_error (GRUB_ERR_BAD_ARGUMENT, N_("-d and -u are required"));
  disk = open_disk (argc > 0 ? args[0] : 0, &disk_name);
  if (!disk)
    return grub_errno;
  init_io (&io, disk);
  status = gptprio_next (&io, &choice);
  grub_disk_close (disk);
  if (status != GPTPRIO_OK)
    {
      grub_err_t err = grub_error (status == GPTPRIO_ERR_NOTHING_BOOTABLE ? GRUB_ERR_UNKNOWN_DEVICE : GRUB_ERR_IO,
                                   "gptprio.next: %s: %s", disk_name, gptprio_strerror (status));
      grub_free (disk_name);
      return err;
    }
  device_name = grub_xasprintf ("%s,gpt%u", disk_name, choice.number);
  grub_free (disk_name);
  if (!device_name)
    return grub_errno;
  gptprio_format_guid (choice.unique_guid, uuid);
  grub_dprintf ("gptprio", "chose %s (priority %u, tries %u%s, successful %d)\n", device_name, choice.priority,
                choice.tries_before, choice.decremented ? " -> decremented" : "", choice.successful);
  grub_env_set (state[0].arg, device_name);
  grub_free (device_name);
  grub_env_set (state[1].arg, uuid);
  return grub_errno;
}

static const struct grub_arg_option label_options[] = {
  {"set", 's', 0, N_("Set a variable to the partition's device name."), N_("VARNAME"), ARG_TYPE_STRING},
  {0, 0, 0, 0, 0, 0}
};

static grub_err_t
grub_cmd_label (grub_extcmd_context_t ctxt, int argc, char **args)
{
  struct grub_arg_list *state = ctxt->state;
  struct gptprio_io io;
  enum gptprio_status status;
  gptprio_u32 number = 0;
  char *disk_name, *device_name;
  grub_disk_t disk;

  if (!state[0].set || argc < 1)
    return grub_error (GRUB_ERR_BAD_ARGUMENT, N_("usage: gptprio.label -s VARNAME LABEL [DEVICE]"));
  disk = open_disk (argc > 1 ? args[1] : 0, &disk_name);
  if (!disk)
    return grub_errno;
  init_io (&io, disk);
  status = gptprio_find_label (&io, args[0], &number);
  grub_disk_close (disk);
  if (status != GPTPRIO_OK)
    {
      grub_err_t err = grub_error (GRUB_ERR_UNKNOWN_DEVICE, "gptprio.label %s: %s: %s", args[0], disk_name, gptprio_strerror (status));
      grub_free (disk_name);
      return err;
    }
  device_name = grub_xasprintf ("%s,gpt%u", disk_name, number);
  grub_free (disk_name);
  if (!device_name)
    return grub_errno;
  grub_env_set (state[0].arg, device_name);
  grub_free (device_name);
  return grub_errno;
}

static grub_extcmd_t cmd_next, cmd_label;

GRUB_MOD_INIT (gptprio)
{
  cmd_next = grub_register_extcmd ("gptprio.next", grub_cmd_next, 0, N_("-d DEVVAR -u UUIDVAR [DEVICE]"),
                                   N_("Choose the A/B boot partition by GPT priority, tries and successful bits."),
                                   next_options);
  cmd_label = grub_register_extcmd ("gptprio.label", grub_cmd_label, 0, N_("-s VARNAME LABEL [DEVICE]"),
                                    N_("Find the partition with a GPT partition name."), label_options);
}

GRUB_MOD_FINI (gptprio)
{
  grub_unregister_extcmd (cmd_next);
  grub_unregister_extcmd (cmd_label);
}
