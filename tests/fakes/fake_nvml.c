/*
 * A fake libnvidia-ml.so.1 for tests on machines without an NVIDIA driver.
 *
 * The real `nvidia-ml-py` binding (pynvml) loads it with
 * CDLL("libnvidia-ml.so.1") when its directory is on LD_LIBRARY_PATH, and
 * calls the C entry points below exactly as it calls NVIDIA's library, so
 * the binding's own marshalling (structs, buffers, error codes) is exercised.
 *
 * Values come from a text file named by the environment variable
 * FAKE_NVML_CONFIG, one `key=value` per line ('#' starts a comment):
 *
 *   init=0                         nvmlInit result (9 = driver not loaded)
 *   driver_version=580.65.06
 *   cuda_driver_version=13000      as nvmlSystemGetCudaDriverVersion returns it
 *   nvml_version=13.580.65.06
 *   gpu_count=1
 *   gpu.0.name=NVIDIA H200
 *   gpu.0.compute_capability=9.0
 *   gpu.0.memory_total_bytes=150754820096
 *   gpu.0.mig_mode=0,0             current,pending (1 = enabled)
 *   gpu.0.ecc_mode=1,1             current,pending
 *   gpu.0.compute_mode=0           NVML_COMPUTEMODE_*
 *   gpu.0.persistence_mode=1
 *   gpu.0.power_limit_mw=700000
 *   gpu.0.max_clock.1=1980         NVML_CLOCK_SM
 *   gpu.0.max_clock.2=3201         NVML_CLOCK_MEM
 *   gpu.0.pci_device_id=0x233510DE
 *   gpu.0.multiprocessors=132
 *   gpu.0.uuid=GPU-...
 *   gpu.0.serial=...
 *
 * A key that is absent answers NVML_ERROR_NOT_SUPPORTED (3), as a real
 * driver does for a field a board lacks; a value of `!N` answers error N.
 *
 * When FAKE_NVML_LOG names a file, nvmlInit* and nvmlShutdown append a line
 * each ("init" / "shutdown"), so a test can prove they are paired.
 *
 * Build: gcc -shared -fPIC -O1 -o libnvidia-ml.so.1 fake_nvml.c
 * (tests/fakes/nvml.py does this once per test session).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int nvmlReturn_t;

enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_UNINITIALIZED = 1,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_INSUFFICIENT_SIZE = 7,
    NVML_ERROR_DRIVER_NOT_LOADED = 9,
    NVML_ERROR_UNKNOWN = 999,
};

#define MAX_ENTRIES 1024
#define MAX_KEY 96
#define MAX_VALUE 160
#define MAX_GPUS 64

struct entry {
    char key[MAX_KEY];
    char value[MAX_VALUE];
};

/* A device handle is a pointer to one of these; pynvml only passes it back. */
struct fake_device {
    unsigned int index;
};

static struct entry entries[MAX_ENTRIES];
static int entry_count;
static int init_refcount;
static struct fake_device devices[MAX_GPUS];

typedef struct {
    unsigned long long total, free, used;
} nvmlMemory_t;

typedef struct {
    unsigned int version;
    unsigned long long total, reserved, free, used;
} nvmlMemory_v2_t;

typedef struct {
    char busIdLegacy[16];
    unsigned int domain, bus, device, pciDeviceId, pciSubSystemId;
    char busId[32];
} nvmlPciInfo_t;

typedef struct {
    unsigned int multiprocessorCount, sharedCopyEngineCount, sharedDecoderCount,
        sharedEncoderCount, sharedJpegCount, sharedOfaCount, gpuInstanceSliceCount,
        computeInstanceSliceCount;
    unsigned long long memorySizeMB;
} nvmlDeviceAttributes_t;

static void log_event(const char *event)
{
    const char *path = getenv("FAKE_NVML_LOG");
    if (!path || !*path)
        return;
    FILE *fh = fopen(path, "a");
    if (!fh)
        return;
    fprintf(fh, "%s\n", event);
    fclose(fh);
}

static void strip(char *text)
{
    size_t len = strlen(text);
    while (len && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
        text[--len] = '\0';
}

static void load_config(void)
{
    entry_count = 0;
    const char *path = getenv("FAKE_NVML_CONFIG");
    if (!path || !*path)
        return;
    FILE *fh = fopen(path, "r");
    if (!fh)
        return;
    char line[MAX_KEY + MAX_VALUE + 8];
    while (entry_count < MAX_ENTRIES && fgets(line, sizeof line, fh)) {
        strip(line);
        if (line[0] == '#' || line[0] == '\0')
            continue;
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq = '\0';
        size_t key_length = strlen(line);
        size_t value_length = strlen(eq + 1);
        if (key_length >= MAX_KEY || value_length >= MAX_VALUE)
            continue; /* longer than any real NVML value: ignored, as if absent */
        memcpy(entries[entry_count].key, line, key_length + 1);
        memcpy(entries[entry_count].value, eq + 1, value_length + 1);
        entry_count++;
    }
    fclose(fh);
}

static const char *lookup(const char *key)
{
    for (int i = entry_count - 1; i >= 0; i--) /* a later line overrides */
        if (strcmp(entries[i].key, key) == 0)
            return entries[i].value;
    return NULL;
}

/* The configured value of `key`, or the error the test asked for. */
static nvmlReturn_t get_value(const char *key, const char **value)
{
    if (init_refcount <= 0)
        return NVML_ERROR_UNINITIALIZED;
    const char *found = lookup(key);
    if (!found)
        return NVML_ERROR_NOT_SUPPORTED;
    if (found[0] == '!')
        return (nvmlReturn_t)strtol(found + 1, NULL, 10);
    *value = found;
    return NVML_SUCCESS;
}

static nvmlReturn_t get_ull(const char *key, unsigned long long *out)
{
    const char *value = NULL;
    nvmlReturn_t rc = get_value(key, &value);
    if (rc == NVML_SUCCESS)
        *out = strtoull(value, NULL, 0);
    return rc;
}

static nvmlReturn_t get_uint(const char *key, unsigned int *out)
{
    unsigned long long wide = 0;
    nvmlReturn_t rc = get_ull(key, &wide);
    if (rc == NVML_SUCCESS)
        *out = (unsigned int)wide;
    return rc;
}

/* "a,b" into two unsigned ints (current and pending modes). */
static nvmlReturn_t get_pair(const char *key, unsigned int *first, unsigned int *second)
{
    const char *value = NULL;
    nvmlReturn_t rc = get_value(key, &value);
    if (rc != NVML_SUCCESS)
        return rc;
    char *rest = NULL;
    *first = (unsigned int)strtoul(value, &rest, 0);
    *second = (rest && *rest == ',') ? (unsigned int)strtoul(rest + 1, NULL, 0) : *first;
    return NVML_SUCCESS;
}

static nvmlReturn_t copy_string(const char *key, char *buffer, unsigned int length)
{
    const char *value = NULL;
    nvmlReturn_t rc = get_value(key, &value);
    if (rc != NVML_SUCCESS)
        return rc;
    if (!buffer)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (strlen(value) + 1 > length)
        return NVML_ERROR_INSUFFICIENT_SIZE;
    memcpy(buffer, value, strlen(value) + 1);
    return NVML_SUCCESS;
}

static int device_index(const void *device, unsigned int *index)
{
    const struct fake_device *dev = device;
    if (!dev || dev < devices || dev >= devices + MAX_GPUS)
        return 0;
    *index = dev->index;
    return 1;
}

#define DEVICE_KEY(buf, device, suffix)                                              \
    unsigned int index_;                                                             \
    if (init_refcount <= 0)                                                          \
        return NVML_ERROR_UNINITIALIZED;                                             \
    if (!device_index(device, &index_))                                              \
        return NVML_ERROR_INVALID_ARGUMENT;                                          \
    char buf[MAX_KEY];                                                               \
    snprintf(buf, sizeof buf, "gpu.%u.%s", index_, suffix)

/* --- library life cycle ---------------------------------------------------- */

nvmlReturn_t nvmlInitWithFlags(unsigned int flags)
{
    (void)flags;
    load_config();
    const char *init = lookup("init");
    nvmlReturn_t rc = init ? (nvmlReturn_t)strtol(init[0] == '!' ? init + 1 : init, NULL, 10) : NVML_SUCCESS;
    if (rc != NVML_SUCCESS)
        return rc;
    init_refcount++;
    log_event("init");
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlInit_v2(void) { return nvmlInitWithFlags(0); }
nvmlReturn_t nvmlInit(void) { return nvmlInitWithFlags(0); }

nvmlReturn_t nvmlShutdown(void)
{
    if (init_refcount <= 0)
        return NVML_ERROR_UNINITIALIZED;
    init_refcount--;
    log_event("shutdown");
    return NVML_SUCCESS;
}

const char *nvmlErrorString(nvmlReturn_t result)
{
    switch (result) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    default: return "Unknown Error";
    }
}

/* --- system ------------------------------------------------------------------ */

nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length)
{
    return copy_string("driver_version", version, length);
}

nvmlReturn_t nvmlSystemGetNVMLVersion(char *version, unsigned int length)
{
    return copy_string("nvml_version", version, length);
}

nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *version)
{
    unsigned int value = 0;
    nvmlReturn_t rc = get_uint("cuda_driver_version", &value);
    if (rc == NVML_SUCCESS)
        *version = (int)value;
    return rc;
}

nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *version)
{
    return nvmlSystemGetCudaDriverVersion(version);
}

/* --- devices ------------------------------------------------------------------ */

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count)
{
    unsigned int value = 0;
    if (init_refcount <= 0)
        return NVML_ERROR_UNINITIALIZED;
    const char *found = lookup("gpu_count");
    if (found && found[0] == '!')
        return (nvmlReturn_t)strtol(found + 1, NULL, 10);
    value = found ? (unsigned int)strtoul(found, NULL, 0) : 0;
    *count = value > MAX_GPUS ? MAX_GPUS : value;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetCount(unsigned int *count) { return nvmlDeviceGetCount_v2(count); }

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, void **device)
{
    unsigned int count = 0;
    nvmlReturn_t rc = nvmlDeviceGetCount_v2(&count);
    if (rc != NVML_SUCCESS)
        return rc;
    if (index >= count || !device)
        return NVML_ERROR_INVALID_ARGUMENT;
    devices[index].index = index;
    *device = &devices[index];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, void **device)
{
    return nvmlDeviceGetHandleByIndex_v2(index, device);
}

nvmlReturn_t nvmlDeviceGetName(void *device, char *name, unsigned int length)
{
    DEVICE_KEY(key, device, "name");
    return copy_string(key, name, length);
}

nvmlReturn_t nvmlDeviceGetUUID(void *device, char *uuid, unsigned int length)
{
    DEVICE_KEY(key, device, "uuid");
    return copy_string(key, uuid, length);
}

nvmlReturn_t nvmlDeviceGetSerial(void *device, char *serial, unsigned int length)
{
    DEVICE_KEY(key, device, "serial");
    return copy_string(key, serial, length);
}

nvmlReturn_t nvmlDeviceGetCudaComputeCapability(void *device, int *major, int *minor)
{
    DEVICE_KEY(key, device, "compute_capability");
    const char *value = NULL;
    nvmlReturn_t rc = get_value(key, &value);
    if (rc != NVML_SUCCESS)
        return rc;
    char *rest = NULL;
    *major = (int)strtol(value, &rest, 10);
    *minor = (rest && *rest == '.') ? (int)strtol(rest + 1, NULL, 10) : 0;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(void *device, nvmlMemory_t *memory)
{
    DEVICE_KEY(key, device, "memory_total_bytes");
    unsigned long long total = 0;
    nvmlReturn_t rc = get_ull(key, &total);
    if (rc != NVML_SUCCESS)
        return rc;
    memory->total = total;
    memory->used = 0;
    memory->free = total;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(void *device, nvmlMemory_v2_t *memory)
{
    nvmlMemory_t plain;
    nvmlReturn_t rc = nvmlDeviceGetMemoryInfo(device, &plain);
    if (rc != NVML_SUCCESS)
        return rc;
    memory->total = plain.total;
    memory->reserved = 0;
    memory->free = plain.free;
    memory->used = 0;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMigMode(void *device, unsigned int *current, unsigned int *pending)
{
    DEVICE_KEY(key, device, "mig_mode");
    return get_pair(key, current, pending);
}

nvmlReturn_t nvmlDeviceGetEccMode(void *device, unsigned int *current, unsigned int *pending)
{
    DEVICE_KEY(key, device, "ecc_mode");
    return get_pair(key, current, pending);
}

nvmlReturn_t nvmlDeviceGetComputeMode(void *device, unsigned int *mode)
{
    DEVICE_KEY(key, device, "compute_mode");
    return get_uint(key, mode);
}

nvmlReturn_t nvmlDeviceGetPersistenceMode(void *device, unsigned int *mode)
{
    DEVICE_KEY(key, device, "persistence_mode");
    return get_uint(key, mode);
}

nvmlReturn_t nvmlDeviceGetPowerManagementLimit(void *device, unsigned int *limit)
{
    DEVICE_KEY(key, device, "power_limit_mw");
    return get_uint(key, limit);
}

nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(void *device, unsigned int *limit)
{
    return nvmlDeviceGetPowerManagementLimit(device, limit);
}

nvmlReturn_t nvmlDeviceGetPowerManagementDefaultLimit(void *device, unsigned int *limit)
{
    return nvmlDeviceGetPowerManagementLimit(device, limit);
}

nvmlReturn_t nvmlDeviceGetMaxClockInfo(void *device, int type, unsigned int *clock)
{
    char suffix[32];
    snprintf(suffix, sizeof suffix, "max_clock.%d", type);
    DEVICE_KEY(key, device, suffix);
    return get_uint(key, clock);
}

nvmlReturn_t nvmlDeviceGetPciInfo_v3(void *device, nvmlPciInfo_t *pci)
{
    DEVICE_KEY(key, device, "pci_device_id");
    unsigned int device_id = 0;
    nvmlReturn_t rc = get_uint(key, &device_id);
    if (rc != NVML_SUCCESS)
        return rc;
    memset(pci, 0, sizeof *pci);
    pci->bus = index_ + 1;
    pci->pciDeviceId = device_id;
    snprintf(pci->busId, sizeof pci->busId, "00000000:%02X:00.0", pci->bus);
    snprintf(pci->busIdLegacy, sizeof pci->busIdLegacy, "0000:%02X:00.0", pci->bus);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPciInfo_v2(void *device, nvmlPciInfo_t *pci) { return nvmlDeviceGetPciInfo_v3(device, pci); }
nvmlReturn_t nvmlDeviceGetPciInfo(void *device, nvmlPciInfo_t *pci) { return nvmlDeviceGetPciInfo_v3(device, pci); }

nvmlReturn_t nvmlDeviceGetAttributes_v2(void *device, nvmlDeviceAttributes_t *attributes)
{
    DEVICE_KEY(key, device, "multiprocessors");
    unsigned int count = 0;
    nvmlReturn_t rc = get_uint(key, &count);
    if (rc != NVML_SUCCESS)
        return rc;
    memset(attributes, 0, sizeof *attributes);
    attributes->multiprocessorCount = count;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetAttributes(void *device, nvmlDeviceAttributes_t *attributes)
{
    return nvmlDeviceGetAttributes_v2(device, attributes);
}
