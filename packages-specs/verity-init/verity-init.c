/*
 * verity-init: /init of brl's initramfs. The kernel that boots a brl image has dm-verity, virtio
 * and the block drivers as modules and cannot read `dm-mod.create=`, so this program does what
 * CONFIG_DM_INIT would: load the modules, find the partitions named by the table on the kernel
 * command line, create the read-only verity device, mount it, and hand over to the real init.
 * Any failure ends in a reboot, so GRUB spends the bank's tries; there is no unverified fallback.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/dm-ioctl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#define NEW_ROOT "/newroot"
#define MODULE_LIST "/etc/verity-init/modules"
#define DEVICE_WAIT_MS 30000
#define FAIL_REBOOT_SECONDS 5

/* To the kernel log (and so the journal later) when /dev is up, else straight to the console. */
static void emit(const char *level, const char *line) {
  char message[1100];
  int length = snprintf(message, sizeof message, "%sverity-init: %s\n", level, line);
  int kmsg = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
  if (kmsg >= 0 && write(kmsg, message, (size_t)length) == length) {
    close(kmsg);
    return;
  }
  if (kmsg >= 0) close(kmsg);
  /* Without the level prefix: the console shows text as is. */
  const char *text = message + strlen(level);
  if (write(STDERR_FILENO, text, strlen(text)) < 0) return;
}

static void say(const char *level, const char *format, va_list args) {
  char line[1024];
  vsnprintf(line, sizeof line, format, args);
  emit(level, line);
}

static void info(const char *format, ...) {
  va_list args;
  va_start(args, format);
  say("<6>", format, args);
  va_end(args);
}

/* Never returns: the bank is not bootable, and only a reboot lets GRUB try the other one. */
static void fail(const char *format, ...) {
  va_list args;
  va_start(args, format);
  say("<2>", format, args);
  va_end(args);
  emit("<2>", "refusing to boot this bank; rebooting");
  sleep(FAIL_REBOOT_SECONDS);
  sync();
  reboot(RB_AUTOBOOT);
  for (;;) pause();
}

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void mount_or_fail(const char *source, const char *target, const char *type, unsigned long flags) {
  mkdir(target, 0755);
  if (mount(source, target, type, flags, NULL) != 0 && errno != EBUSY) fail("mount %s on %s: %s", type, target, strerror(errno));
}

/* Modules in dependency order, one path per line (written by the image build from modules.dep). */
static void load_modules(void) {
  FILE *list = fopen(MODULE_LIST, "re");
  if (list == NULL) fail("cannot open %s: %s", MODULE_LIST, strerror(errno));
  char path[512];
  int loaded = 0;
  while (fgets(path, sizeof path, list) != NULL) {
    path[strcspn(path, "\n")] = '\0';
    if (path[0] == '\0') continue;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail("cannot open module %s: %s", path, strerror(errno));
    /* ENODEV: a driver for hardware this machine lacks (xen-blkfront outside Xen) declines to load. */
    if (syscall(SYS_finit_module, fd, "", 0) != 0 && errno != EEXIST && errno != ENODEV) fail("cannot load module %s: %s", path, strerror(errno));
    close(fd);
    loaded++;
  }
  fclose(list);
  info("loaded %d modules", loaded);
}

static char *read_file(const char *path, size_t *length) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  size_t size = 0, capacity = 4096;
  char *data = malloc(capacity + 1);
  for (;;) {
    if (size == capacity) data = realloc(data, (capacity *= 2) + 1);
    ssize_t n = read(fd, data + size, capacity - size);
    if (n <= 0) break;
    size += (size_t)n;
  }
  close(fd);
  data[size] = '\0';
  if (length) *length = size;
  return data;
}

/*
 * The value of `name=` on the command line, quoted as the kernel accepts it: `name="a b"` or, as
 * GRUB writes an argument with spaces, `"name=a b"`.
 */
static char *cmdline_value(const char *cmdline, const char *name) {
  size_t name_length = strlen(name);
  const char *p = cmdline;
  while (*p) {
    while (*p == ' ' || *p == '\n') p++;
    if (*p == '\0') break;
    const char *start = p;
    int quoted = 0;
    while (*p && (quoted || (*p != ' ' && *p != '\n'))) {
      if (*p == '"') quoted = !quoted;
      p++;
    }
    /* The word without its quote characters (the kernel drops them the same way). */
    char *word = strndup(start, (size_t)(p - start));
    char *out = word;
    for (const char *in = word; *in; in++) if (*in != '"') *out++ = *in;
    *out = '\0';
    if (strncmp(word, name, name_length) == 0 && word[name_length] == '=') {
      char *value = strdup(word + name_length + 1);
      free(word);
      return value;
    }
    free(word);
  }
  return NULL;
}

struct gpt_match {
  char disk[256];
  unsigned number;
};

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = (char)tolower((unsigned char)c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

/* A GUID's text form as GPT stores it: the first three groups little-endian. */
static int guid_bytes(const char *text, uint8_t out[16]) {
  static const int order[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
  uint8_t raw[16];
  int n = 0;
  for (const char *p = text; *p && n < 16; p++) {
    if (*p == '-') continue;
    int high = hex_value(p[0]), low = p[1] ? hex_value(p[1]) : -1;
    if (high < 0 || low < 0) return -1;
    raw[n++] = (uint8_t)(high << 4 | low);
    p++;
  }
  if (n != 16) return -1;
  for (int i = 0; i < 16; i++) out[i] = raw[order[i]];
  return 0;
}

/* Looks for the partition with this unique GUID in the GPT of every disk in /sys/block. */
static int find_partition(const uint8_t guid[16], struct gpt_match *match) {
  DIR *blocks = opendir("/sys/block");
  if (blocks == NULL) return -1;
  struct dirent *entry;
  int found = -1;
  while (found != 0 && (entry = readdir(blocks)) != NULL) {
    if (entry->d_name[0] == '.' || strncmp(entry->d_name, "loop", 4) == 0 || strncmp(entry->d_name, "ram", 3) == 0 || strncmp(entry->d_name, "dm-", 3) == 0) continue;
    char path[300];
    snprintf(path, sizeof path, "/dev/%s", entry->d_name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    uint8_t header[512];
    if (pread(fd, header, sizeof header, 512) == (ssize_t)sizeof header && memcmp(header, "EFI PART", 8) == 0) {
      uint64_t entries_lba;
      uint32_t count, size;
      memcpy(&entries_lba, header + 72, 8);
      memcpy(&count, header + 80, 4);
      memcpy(&size, header + 84, 4);
      if (size >= 128 && size <= 4096 && count <= 1024) {
        uint8_t *entries = malloc((size_t)count * size);
        if (pread(fd, entries, (size_t)count * size, (off_t)(entries_lba * 512)) == (ssize_t)((size_t)count * size)) {
          for (uint32_t i = 0; i < count; i++) {
            if (memcmp(entries + (size_t)i * size + 16, guid, 16) == 0) {
              snprintf(match->disk, sizeof match->disk, "%s", entry->d_name);
              match->number = i + 1;
              found = 0;
              break;
            }
          }
        }
        free(entries);
      }
    }
    close(fd);
  }
  closedir(blocks);
  return found;
}

/* "major:minor" of partition `number` of `disk`, from sysfs. */
static int partition_devnum(const char *disk, unsigned number, char *out, size_t out_size) {
  char dir_path[300];
  snprintf(dir_path, sizeof dir_path, "/sys/block/%s", disk);
  DIR *dir = opendir(dir_path);
  if (dir == NULL) return -1;
  struct dirent *entry;
  int found = -1;
  while (found != 0 && (entry = readdir(dir)) != NULL) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s/partition", dir_path, entry->d_name);
    char *text = read_file(path, NULL);
    if (text == NULL) continue;
    if ((unsigned)strtoul(text, NULL, 10) == number) {
      snprintf(path, sizeof path, "%s/%s/dev", dir_path, entry->d_name);
      char *dev = read_file(path, NULL);
      if (dev != NULL) {
        dev[strcspn(dev, "\n")] = '\0';
        snprintf(out, out_size, "%s", dev);
        free(dev);
        found = 0;
      }
    }
    free(text);
  }
  closedir(dir);
  return found;
}

/* PARTUUID=<guid>/PARTNROFF=<n> → "major:minor", waiting for the disk to appear. */
static void resolve_device(const char *spec, char *out, size_t out_size) {
  char guid_text[64];
  unsigned offset = 0;
  if (sscanf(spec, "PARTUUID=%36[0-9a-fA-F-]/PARTNROFF=%u", guid_text, &offset) != 2) fail("unsupported device %s in the verity table", spec);
  uint8_t guid[16];
  if (guid_bytes(guid_text, guid) != 0) fail("bad PARTUUID in %s", spec);
  long deadline = now_ms() + DEVICE_WAIT_MS;
  struct gpt_match match;
  for (;;) {
    if (find_partition(guid, &match) == 0 && partition_devnum(match.disk, match.number + offset, out, out_size) == 0) return;
    if (now_ms() > deadline) fail("no partition %s (partition %s + %u) appeared within %d s", spec, guid_text, offset, DEVICE_WAIT_MS / 1000);
    usleep(50000);
  }
}

static void dm_init(struct dm_ioctl *io, size_t size, const char *name, uint32_t flags) {
  memset(io, 0, size);
  io->version[0] = DM_VERSION_MAJOR;
  io->version[1] = 0;
  io->version[2] = 0;
  io->data_size = (uint32_t)size;
  io->data_start = sizeof(struct dm_ioctl);
  io->flags = flags;
  snprintf(io->name, sizeof io->name, "%s", name);
}

/*
 * `<name>,<uuid>,<minor>,<flags>,<start> <length> <target> <params>` (one device, one target, as
 * brl's grub.cfg writes it). Creates the device read-only and returns its device number.
 */
static dev_t create_verity_device(char *table) {
  char *fields[5];
  char *cursor = table;
  for (int i = 0; i < 4; i++) {
    char *comma = strchr(cursor, ',');
    if (comma == NULL) fail("malformed dm-mod.create: expected name,uuid,minor,flags,table");
    *comma = '\0';
    fields[i] = cursor;
    cursor = comma + 1;
  }
  fields[4] = cursor;
  if (strchr(fields[4], ';') != NULL || strchr(fields[4], ',') != NULL) fail("dm-mod.create holds more than one device or target; brl writes one");
  if (strcmp(fields[3], "ro") != 0) fail("the root device must be read-only (flags '%s')", fields[3]);
  unsigned long long start, length;
  char target[16];
  int consumed = 0;
  if (sscanf(fields[4], "%llu %llu %15s %n", &start, &length, target, &consumed) != 3 || strcmp(target, "verity") != 0) {
    fail("the root table must be one verity target");
  }
  /* verity 1 <data dev> <hash dev> ... : the devices are the 2nd and 3rd words of the params. */
  char *params = fields[4] + consumed;
  char version[8], data_spec[128], hash_spec[128];
  int rest = 0;
  if (sscanf(params, "%7s %127s %127s %n", version, data_spec, hash_spec, &rest) != 3) fail("malformed verity parameters");
  char data_dev[32], hash_dev[32];
  resolve_device(data_spec, data_dev, sizeof data_dev);
  resolve_device(hash_spec, hash_dev, sizeof hash_dev);
  char resolved[1024];
  snprintf(resolved, sizeof resolved, "%s %s %s %s", version, data_dev, hash_dev, params + rest);

  int control = open("/dev/mapper/control", O_RDWR | O_CLOEXEC);
  if (control < 0) fail("cannot open /dev/mapper/control: %s", strerror(errno));
  size_t size = sizeof(struct dm_ioctl) + sizeof(struct dm_target_spec) + strlen(resolved) + 1 + 8;
  size = (size + 7) & ~(size_t)7;
  struct dm_ioctl *io = calloc(1, size);

  dm_init(io, sizeof(struct dm_ioctl), fields[0], 0);
  if (ioctl(control, DM_DEV_CREATE, io) != 0) fail("DM_DEV_CREATE %s: %s", fields[0], strerror(errno));

  dm_init(io, size, fields[0], DM_READONLY_FLAG);
  io->target_count = 1;
  struct dm_target_spec *spec = (struct dm_target_spec *)((char *)io + sizeof(struct dm_ioctl));
  spec->sector_start = start;
  spec->length = length;
  snprintf(spec->target_type, sizeof spec->target_type, "%s", target);
  strcpy((char *)(spec + 1), resolved);
  spec->next = 0;
  if (ioctl(control, DM_TABLE_LOAD, io) != 0) fail("the kernel refused the verity table (%s): %s", resolved, strerror(errno));

  dm_init(io, sizeof(struct dm_ioctl), fields[0], 0);
  if (ioctl(control, DM_DEV_SUSPEND, io) != 0) fail("cannot activate %s: %s", fields[0], strerror(errno));
  dev_t dev = (dev_t)io->dev;
  free(io);
  close(control);
  info("%s: verity device %u:%u over %s (data) and %s (hash)", fields[0], major(dev), minor(dev), data_dev, hash_dev);
  return dev;
}

/* ext4 or erofs, by superblock magic; a read error here is verity refusing a block. */
static const char *root_filesystem(const char *device) {
  int fd = open(device, O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open %s: %s", device, strerror(errno));
  uint8_t block[2048];
  if (pread(fd, block, sizeof block, 0) != (ssize_t)sizeof block) fail("cannot read the root superblock on %s: %s", device, strerror(errno));
  close(fd);
  uint16_t ext4_magic;
  uint32_t erofs_magic;
  memcpy(&ext4_magic, block + 1080, 2);
  memcpy(&erofs_magic, block + 1024, 4);
  if (ext4_magic == 0xef53) return "ext4";
  if (erofs_magic == 0xe0f5e1e2) return "erofs";
  fail("%s holds neither ext4 nor erofs", device);
  return NULL;
}

/* Frees the initramfs: everything on it but the new root's mount point (same device only). */
static void remove_tree(int dirfd, dev_t rootdev) {
  DIR *dir = fdopendir(dirfd);
  if (dir == NULL) return;
  struct dirent *entry;
  while ((entry = readdir(dir)) != NULL) {
    if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
    struct stat st;
    if (fstatat(dirfd, entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || st.st_dev != rootdev) continue;
    if (S_ISDIR(st.st_mode)) {
      int child = openat(dirfd, entry->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (child >= 0) remove_tree(child, rootdev);
      unlinkat(dirfd, entry->d_name, AT_REMOVEDIR);
    } else {
      unlinkat(dirfd, entry->d_name, 0);
    }
  }
  closedir(dir);
}

int main(int argc, char **argv) {
  (void)argc;
  mount_or_fail("devtmpfs", "/dev", "devtmpfs", MS_NOSUID);
  mount_or_fail("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC);
  mount_or_fail("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC);
  load_modules();

  char *cmdline = read_file("/proc/cmdline", NULL);
  if (cmdline == NULL) fail("cannot read /proc/cmdline");
  char *table = cmdline_value(cmdline, "dm-mod.create");
  if (table == NULL) fail("no dm-mod.create= on the kernel command line: nothing says which root to trust");
  dev_t dev = create_verity_device(table);

  char device[64];
  snprintf(device, sizeof device, "/dev/dm-%u", minor(dev));
  if (access(device, F_OK) != 0 && mknod(device, S_IFBLK | 0600, dev) != 0) fail("cannot create %s: %s", device, strerror(errno));
  const char *type = root_filesystem(device);
  mkdir(NEW_ROOT, 0755);
  if (mount(device, NEW_ROOT, type, MS_RDONLY, NULL) != 0) fail("cannot mount the verified root %s (%s): %s", device, type, strerror(errno));
  info("verified root mounted read-only (%s)", type);

  char *init = cmdline_value(cmdline, "init");
  const char *program = init != NULL ? init : "/sbin/init";
  char path[512];
  snprintf(path, sizeof path, NEW_ROOT "%s", program);
  if (access(path, X_OK) != 0) fail("the verified root has no executable %s", program);

  struct stat initramfs;
  if (stat("/", &initramfs) != 0) fail("cannot stat the initramfs: %s", strerror(errno));
  static const char *const api_mounts[] = {"/dev", "/proc", "/sys"};
  for (size_t i = 0; i < sizeof api_mounts / sizeof api_mounts[0]; i++) {
    char target[64];
    snprintf(target, sizeof target, NEW_ROOT "%s", api_mounts[i]);
    if (mount(api_mounts[i], target, NULL, MS_MOVE, NULL) != 0) fail("cannot move %s into the new root: %s", api_mounts[i], strerror(errno));
  }
  int rootfd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0 || chdir(NEW_ROOT) != 0) fail("cannot enter the new root: %s", strerror(errno));
  remove_tree(rootfd, initramfs.st_dev);
  if (mount(".", "/", NULL, MS_MOVE, NULL) != 0) fail("cannot move the new root to /: %s", strerror(errno));
  if (chroot(".") != 0 || chdir("/") != 0) fail("cannot chroot into the new root: %s", strerror(errno));
  info("starting %s", program);
  /* The kernel passes init the words after `--` on its command line: they are systemd's. */
  argv[0] = (char *)program;
  execv(program, argv);
  fail("cannot start %s: %s", program, strerror(errno));
  return 1;
}
