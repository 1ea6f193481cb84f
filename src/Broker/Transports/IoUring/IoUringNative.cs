using System.Runtime.InteropServices;

namespace Broker.Transports.IoUring;

/// <summary>
/// The Linux system calls and kernel structures the io_uring transport uses (linux/io_uring.h), called through libc.
/// Only what the transport needs: accept, recv into provided buffers, send, shutdown and close on direct descriptors.
/// </summary>
internal static unsafe partial class IoUringNative
{
    private const string Libc = "libc";

    // The same numbers on x86-64 and arm64 (both use the generic table from 5.1 on).
    private const long SysIoUringSetup = 425;
    private const long SysIoUringEnter = 426;
    private const long SysIoUringRegister = 427;

    public const byte OpAccept = 13;
    public const byte OpSendMsg = 9;
    public const byte OpAsyncCancel = 14;
    public const byte OpClose = 19;
    public const byte OpRead = 22;
    public const byte OpSend = 26;
    public const byte OpRecv = 27;
    public const byte OpShutdown = 34;

    public const byte SqeFixedFile = 1 << 0;
    public const byte SqeBufferSelect = 1 << 5;

    public const uint CqeFlagBuffer = 1 << 0;
    public const int CqeBufferShift = 16;

    public const uint SetupCqSize = 1 << 3;
    public const uint SetupSubmitAll = 1 << 7;
    public const uint SetupCoopTaskRun = 1 << 8;

    public const uint FeatureSingleMmap = 1 << 0;
    public const uint FeatureNoDrop = 1 << 1;

    public const uint EnterGetEvents = 1 << 0;

    public const uint RegisterFiles2 = 13;
    public const uint RegisterPbufRing = 22;
    public const uint RsrcRegisterSparse = 1 << 0;

    public const uint FileIndexAlloc = uint.MaxValue;
    public const int MaxFixedFiles = 1 << 20; // IORING_MAX_FIXED_FILES: the largest table a ring may register

    public const uint AsyncCancelAll = 1 << 0;
    public const uint AsyncCancelAny = 1 << 2;

    public const long OffSqRing = 0;
    public const long OffSqes = 0x10000000;

    public const int MsgNoSignal = 0x4000;
    public const int ShutRdWr = 2;

    public const int EIntr = 4;
    public const int EBadF = 9;
    public const int EAgain = 11;
    public const int EBusy = 16;
    public const int ENFile = 23;
    public const int EMFile = 24;
    public const int EInval = 22;
    public const int ENotSock = 88;
    public const int EOpNotSupp = 95;
    public const int ENoBufs = 105;
    public const int ECanceled = 125;

    private const int ProtReadWrite = 0x1 | 0x2;
    private const int MapSharedFlag = 0x01;
    private const int MapPopulate = 0x8000;
    private const int EfdCloexec = 0x80000;
    private const int RlimitNoFile = 7;

    [StructLayout(LayoutKind.Sequential)]
    public struct SqRingOffsets
    {
        public uint Head, Tail, RingMask, RingEntries, Flags, Dropped, Array, Resv1;
        public ulong UserAddr;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct CqRingOffsets
    {
        public uint Head, Tail, RingMask, RingEntries, Overflow, Cqes, Flags, Resv1;
        public ulong UserAddr;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct Params
    {
        public uint SqEntries, CqEntries, Flags, SqThreadCpu, SqThreadIdle, Features, WqFd, Resv0, Resv1, Resv2;
        public SqRingOffsets SqOff;
        public CqRingOffsets CqOff;
    }

    [StructLayout(LayoutKind.Explicit, Size = 64)]
    public struct Sqe
    {
        [FieldOffset(0)] public byte Opcode;
        [FieldOffset(1)] public byte Flags;
        [FieldOffset(2)] public ushort IoPrio;
        [FieldOffset(4)] public int Fd;
        [FieldOffset(8)] public ulong Off;
        [FieldOffset(16)] public ulong Addr;
        [FieldOffset(24)] public uint Len;
        [FieldOffset(28)] public uint OpFlags;
        [FieldOffset(32)] public ulong UserData;
        [FieldOffset(40)] public ushort BufGroup;
        [FieldOffset(42)] public ushort Personality;
        [FieldOffset(44)] public uint FileIndex;
        [FieldOffset(48)] public ulong Addr3;
        [FieldOffset(56)] public ulong Pad2;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct Cqe
    {
        public ulong UserData;
        public int Res;
        public uint Flags;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct RsrcRegister
    {
        public uint Nr;
        public uint Flags;
        public ulong Resv2;
        public ulong Data;
        public ulong Tags;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct BufReg
    {
        public ulong RingAddr;
        public uint RingEntries;
        public ushort Bgid;
        public ushort Pad;
        public ulong Resv0, Resv1, Resv2;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct RLimit
    {
        public ulong Current;
        public ulong Maximum;
    }

    [LibraryImport(Libc, EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall(long number, nint a1, nint a2, nint a3, nint a4, nint a5, nint a6);

    [LibraryImport(Libc, EntryPoint = "mmap", SetLastError = true)]
    private static partial nint Mmap(nint address, nuint length, int protection, int flags, int fd, long offset);

    [LibraryImport(Libc, EntryPoint = "munmap", SetLastError = true)]
    public static partial int Munmap(nint address, nuint length);

    [LibraryImport(Libc, EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport(Libc, EntryPoint = "eventfd", SetLastError = true)]
    private static partial int EventFdCreate(uint initial, int flags);

    [LibraryImport(Libc, EntryPoint = "write", SetLastError = true)]
    private static partial nint Write(int fd, void* buffer, nuint count);

    [LibraryImport(Libc, EntryPoint = "getrlimit", SetLastError = true)]
    private static partial int GetRLimit(int resource, RLimit* limit);

    public static int Setup(uint entries, Params* parameters) => (int)Syscall(SysIoUringSetup, (nint)entries, (nint)parameters, 0, 0, 0, 0);

    /// <returns>The count submitted, or -errno.</returns>
    public static int Enter(int ringFd, uint toSubmit, uint minComplete, uint flags)
    {
        var result = Syscall(SysIoUringEnter, ringFd, (nint)toSubmit, (nint)minComplete, (nint)flags, 0, 0);
        return result >= 0 ? (int)result : -Marshal.GetLastPInvokeError();
    }

    /// <returns>0, or -errno.</returns>
    public static int Register(int ringFd, uint opcode, void* argument, uint count)
    {
        var result = Syscall(SysIoUringRegister, ringFd, (nint)opcode, (nint)argument, (nint)count, 0, 0);
        return result >= 0 ? 0 : -Marshal.GetLastPInvokeError();
    }

    public static nint MapShared(int fd, nuint length, long offset)
    {
        var address = Mmap(0, length, ProtReadWrite, MapSharedFlag | MapPopulate, fd, offset);
        return address == -1 ? throw LastError("mmap of the io_uring rings") : address;
    }

    public static int CreateEventFd()
    {
        var fd = EventFdCreate(0, EfdCloexec); // blocking: io_uring waits on it with a poll instead of failing with EAGAIN
        return fd < 0 ? throw LastError("eventfd") : fd;
    }

    public static void Signal(int eventFd)
    {
        ulong one = 1;
        _ = Write(eventFd, &one, sizeof(ulong)); // a full counter (never here) would only mean the loop is awake anyway
    }

    /// <summary>The current open-files limit: a ring's table of direct descriptors may be at most this large.</summary>
    public static int OpenFilesLimit()
    {
        RLimit limit;
        return GetRLimit(RlimitNoFile, &limit) == 0 ? (int)Math.Min(limit.Current, int.MaxValue) : 1024;
    }

    public static InvalidOperationException LastError(string what) => Error(what, Marshal.GetLastPInvokeError());

    public static InvalidOperationException Error(string what, int errno) =>
        new($"io_uring transport: {what} failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})");
}
