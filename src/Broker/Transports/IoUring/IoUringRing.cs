using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;
using static Broker.Transports.IoUring.IoUringNative;

namespace Broker.Transports.IoUring;

/// <summary>
/// One io_uring and the thread that drives it. Its sockets are direct descriptors: they live in the ring's own table,
/// not in the process's file table, so they do not count against the open-files limit. That limit caps each ring's
/// table instead, and the transport holds more connections than it by running more rings.
/// Only the ring's thread touches the submission queue and the connections' socket state; other threads hand it
/// requests through a queue and wake it through an eventfd that always has a read pending on the ring.
/// Received bytes land in buffers the ring provides (a buffer ring), taken only when data arrives: an idle
/// connection holds no receive buffer.
/// </summary>
internal sealed unsafe class IoUringRing
{
    private const ushort BufferGroup = 0;

    private readonly IoUringTransport _transport;
    private readonly int _ringFd;
    private readonly int _eventFd;
    private readonly nint _ringMemory;
    private readonly nuint _ringSize;
    private readonly nint _sqeMemory;
    private readonly nuint _sqeSize;
    private readonly uint* _sqHead;
    private readonly uint* _sqTail;
    private readonly uint _sqMask;
    private readonly uint _sqEntries;
    private readonly Sqe* _sqes;
    private readonly uint* _cqHead;
    private readonly uint* _cqTail;
    private readonly uint _cqMask;
    private readonly Cqe* _cqes;
    private uint _sqLocalTail;
    private uint _unsubmitted;

    private readonly byte* _bufferRing;
    private readonly ushort* _bufferRingTail;
    private readonly ushort _bufferMask;
    private readonly byte* _buffers;
    private readonly int _bufferSize;
    private ushort _bufferTail;

    private readonly ulong* _wakeBuffer;
    private readonly byte* _acceptAddresses; // per listener: a sockaddr_storage and its length
    private const int AcceptAddressBytes = 128 + 8;

    private readonly IoUringConnection?[] _connections; // by direct-descriptor slot
    private readonly ConcurrentQueue<Request> _requests = new();
    private readonly List<IoUringConnection> _waitingForBuffers = [];
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly int _slots;
    private int _slotsInUse;
    // By listener index: the listener an accept pending on this ring belongs to, and one that has been unbound and
    // waits for that accept's completion before this ring lets go of its socket.
    private readonly IoUringConnectionListener?[] _armedFor = new IoUringConnectionListener?[IoUringTransport.MaxListeners];
    private readonly IoUringConnectionListener?[] _releasing = new IoUringConnectionListener?[IoUringTransport.MaxListeners];
    private int _armedCount;
    private uint _acceptsParked; // listener indexes whose accept waits for a free slot in this ring's table
    private int _sleeping;
    private int _released;
    private bool _stopping;
    private bool _reaping;
    private long _inFlight; // submissions whose completion has not been reaped

    public IoUringRing(IoUringTransport transport, int index, int slots, int bufferCount, int bufferSize)
    {
        _transport = transport;
        _bufferSize = bufferSize;
        var parameters = new Params { Flags = SetupCqSize | SetupSubmitAll | SetupCoopTaskRun, CqEntries = 4096 };
        _ringFd = Setup(1024, &parameters);
        if (_ringFd < 0)
        {
            throw LastError("io_uring_setup (io_uring may be turned off by the kernel.io_uring_disabled sysctl, or blocked by a seccomp profile such as Docker's default; use Broker:Transport=Sockets there)");
        }

        try
        {
            if ((parameters.Features & (FeatureSingleMmap | FeatureNoDrop)) != (FeatureSingleMmap | FeatureNoDrop))
            {
                throw new InvalidOperationException("io_uring transport: the kernel is too old (Linux 5.19 or later is needed)");
            }

            _ringSize = Math.Max(parameters.SqOff.Array + (parameters.SqEntries * sizeof(uint)), parameters.CqOff.Cqes + (parameters.CqEntries * (uint)sizeof(Cqe)));
            _ringMemory = MapShared(_ringFd, _ringSize, OffSqRing);
            _sqeSize = parameters.SqEntries * (uint)sizeof(Sqe);
            _sqeMemory = MapShared(_ringFd, _sqeSize, OffSqes);
            var ring = (byte*)_ringMemory;
            _sqHead = (uint*)(ring + parameters.SqOff.Head);
            _sqTail = (uint*)(ring + parameters.SqOff.Tail);
            _sqMask = *(uint*)(ring + parameters.SqOff.RingMask);
            _sqEntries = parameters.SqEntries;
            var array = (uint*)(ring + parameters.SqOff.Array);
            for (uint i = 0; i < _sqEntries; i++)
            {
                array[i] = i; // submission slot i is entry i, always
            }

            _sqes = (Sqe*)_sqeMemory;
            _sqLocalTail = *_sqTail;
            _cqHead = (uint*)(ring + parameters.CqOff.Head);
            _cqTail = (uint*)(ring + parameters.CqOff.Tail);
            _cqMask = *(uint*)(ring + parameters.CqOff.RingMask);
            _cqes = (Cqe*)(ring + parameters.CqOff.Cqes);

            // The table of direct descriptors, empty: accepts take free slots from it.
            var files = new RsrcRegister { Nr = (uint)slots, Flags = RsrcRegisterSparse };
            var result = Register(_ringFd, RegisterFiles2, &files, (uint)sizeof(RsrcRegister));
            if (result < 0)
            {
                throw Error($"registering a table of {slots} direct descriptors", -result);
            }

            _connections = new IoUringConnection?[slots];
            _slots = slots;

            // The provided buffers and the ring the kernel takes them from.
            _bufferMask = (ushort)(bufferCount - 1);
            _bufferRing = (byte*)NativeMemory.AlignedAlloc((nuint)(bufferCount * 16), 4096);
            NativeMemory.Clear(_bufferRing, (nuint)(bufferCount * 16));
            _bufferRingTail = (ushort*)(_bufferRing + 14);
            _buffers = (byte*)NativeMemory.AlignedAlloc((nuint)bufferCount * (nuint)bufferSize, 4096);
            var registration = new BufReg { RingAddr = (ulong)_bufferRing, RingEntries = (uint)bufferCount, Bgid = BufferGroup };
            result = Register(_ringFd, RegisterPbufRing, &registration, 1);
            if (result < 0)
            {
                throw Error("registering the receive buffer ring (Linux 5.19 or later is needed)", -result);
            }

            for (var id = 0; id < bufferCount; id++)
            {
                AddBuffer((ushort)id);
            }

            PublishBuffers();
            _wakeBuffer = (ulong*)NativeMemory.AllocZeroed(sizeof(ulong));
            _acceptAddresses = (byte*)NativeMemory.AllocZeroed((nuint)(AcceptAddressBytes * IoUringTransport.MaxListeners));
            _eventFd = CreateEventFd();
        }
        catch
        {
            _ = Close(_ringFd); // the kernel drops the ring's registrations with it
            if (_sqeMemory != 0)
            {
                _ = Munmap(_sqeMemory, _sqeSize);
            }

            if (_ringMemory != 0)
            {
                _ = Munmap(_ringMemory, _ringSize);
            }

            NativeMemory.AlignedFree(_buffers);
            NativeMemory.AlignedFree(_bufferRing);
            NativeMemory.Free(_wakeBuffer);
            NativeMemory.Free(_acceptAddresses);
            throw;
        }

        var thread = new Thread(Run) { IsBackground = true, Name = $"io_uring {index}" };
        thread.UnsafeStart();
    }

    /// <summary>Completes when the ring's thread has ended and everything of the ring is released.</summary>
    public Task Stopped => _stopped.Task;

    /// <summary>Hands a request to the ring's thread, waking it if it sleeps; once the ring has stopped, ends it.</summary>
    public void Post(Request request)
    {
        _requests.Enqueue(request);
        if (Volatile.Read(ref _released) == 1)
        {
            FailRequestsAfterStop();
        }
        else if (Interlocked.Exchange(ref _sleeping, 0) == 1)
        {
            Signal(_eventFd);
        }
    }

    // Requests nobody will carry out: a send fails (its loop ends), an unbinding listener is let go.
    private void FailRequestsAfterStop()
    {
        while (_requests.TryDequeue(out var request))
        {
            switch (request.Kind)
            {
                case RequestKind.Send or RequestKind.SendMessage:
                    request.Connection!.OnSent(-ECanceled);
                    break;
                case RequestKind.StopAccepting:
                    request.Listener!.RingReleased();
                    break;
            }
        }
    }

    public ReadOnlySpan<byte> Buffer(ushort id, int length) => new(_buffers + ((nint)id * _bufferSize), length);

    private void Run()
    {
        try
        {
            ArmWake();
            while (true)
            {
                while (_requests.TryDequeue(out var request))
                {
                    Prepare(request);
                }

                if (_stopping)
                {
                    break;
                }

                Interlocked.Exchange(ref _sleeping, 1);
                if (!_requests.IsEmpty)
                {
                    Volatile.Write(ref _sleeping, 0);
                    continue;
                }

                Submit(wait: true);
                Volatile.Write(ref _sleeping, 0);
                Reap();
            }

            CancelEverything();
        }
        catch (Exception ex)
        {
            // Only a broken invariant or an io_uring_enter failure gets here, with operations still pending on memory
            // this process owns: ending the process is safer than going on.
            Environment.FailFast("io_uring transport: the ring's thread failed", ex);
        }
        finally
        {
            Release();
        }
    }

    // Cancels every pending operation and reaps until none is left: only then does the kernel no longer write into
    // the buffers, addresses and counters this ring gave it, and they can be freed.
    private void CancelEverything()
    {
        var cancel = NextSqe();
        cancel->Opcode = OpAsyncCancel;
        cancel->OpFlags = AsyncCancelAll | AsyncCancelAny;
        cancel->UserData = UserData(OperationKind.Cancel, 0);
        while (_inFlight > 0)
        {
            Submit(wait: true);
            Reap();
        }
    }

    private void Release()
    {
        // Closing the ring closes the sockets still in its table.
        _ = Close(_ringFd);
        _ = Close(_eventFd);
        foreach (var connection in _connections)
        {
            connection?.OnRingStopped();
        }

        for (var i = 0; i < _releasing.Length; i++)
        {
            _releasing[i]?.RingReleased();
        }

        Interlocked.Exchange(ref _released, 1);
        FailRequestsAfterStop();
        _ = Munmap(_sqeMemory, _sqeSize);
        _ = Munmap(_ringMemory, _ringSize);
        if (_inFlight == 0)
        {
            // Only when nothing is pending (the loop did not fail): else the kernel might still write into them.
            NativeMemory.AlignedFree(_buffers);
            NativeMemory.AlignedFree(_bufferRing);
            NativeMemory.Free(_wakeBuffer);
            NativeMemory.Free(_acceptAddresses);
        }

        _stopped.TrySetResult();
    }

    private void Submit(bool wait)
    {
        while (true)
        {
            Volatile.Write(ref *_sqTail, _sqLocalTail);
            var result = Enter(_ringFd, _unsubmitted, wait ? 1u : 0u, wait ? EnterGetEvents : 0);
            if (result >= 0)
            {
                _unsubmitted -= (uint)Math.Min(result, (int)_unsubmitted);
                if (_unsubmitted == 0 || !wait)
                {
                    return;
                }

                continue;
            }

            switch (-result)
            {
                case EIntr:
                    continue;
                case EAgain or EBusy:
                    // Completions are waiting for room (or the kernel is short of memory): make room, unless this
                    // is already a completion's handler, which must not reap under its caller; then submit the rest.
                    if (_reaping)
                    {
                        Thread.Yield();
                    }
                    else
                    {
                        Reap();
                    }

                    wait = false;
                    continue;
                default:
                    throw Error("io_uring_enter", -result);
            }
        }
    }

    private Sqe* NextSqe()
    {
        while (_sqLocalTail - Volatile.Read(ref *_sqHead) >= _sqEntries)
        {
            Submit(wait: false);
        }

        var sqe = &_sqes[_sqLocalTail & _sqMask];
        *sqe = default;
        _sqLocalTail++;
        _unsubmitted++;
        _inFlight++; // every operation used here completes exactly once
        return sqe;
    }

    private void Reap()
    {
        _reaping = true;
        try
        {
            while (true)
            {
                var head = *_cqHead;
                if (head == Volatile.Read(ref *_cqTail))
                {
                    break;
                }

                var cqe = _cqes[head & _cqMask];
                Volatile.Write(ref *_cqHead, head + 1);
                _inFlight--;
                Complete(cqe);
            }
        }
        finally
        {
            _reaping = false;
        }

        PublishBuffers();
        if (_waitingForBuffers.Count > 0 && !_stopping)
        {
            foreach (var connection in _waitingForBuffers)
            {
                ArmReceive(connection);
            }

            _waitingForBuffers.Clear();
        }
    }

    private void Complete(in Cqe cqe)
    {
        var kind = (OperationKind)(cqe.UserData >> 56);
        var index = (int)(uint)cqe.UserData;
        switch (kind)
        {
            case OperationKind.Wake:
                ArmWake();
                break;
            case OperationKind.Accept:
                Accepted(index, cqe.Res);
                break;
            case OperationKind.Receive:
                Received(_connections[index]!, cqe.Res, cqe.Flags);
                break;
            case OperationKind.Send:
                var sent = _connections[index]!;
                sent.PendingOperations--;
                sent.OnSent(cqe.Res);
                TryClose(sent);
                break;
            case OperationKind.Shutdown:
                var shut = _connections[index]!;
                shut.PendingOperations--;
                TryClose(shut);
                break;
            case OperationKind.Close:
                var closed = _connections[index]!;
                _connections[index] = null;
                _slotsInUse--;
                closed.OnClosed();
                RearmParkedAccepts();
                break;
        }
    }

    private void Prepare(Request request)
    {
        var connection = request.Connection;
        switch (request.Kind)
        {
            case RequestKind.Receive:
                ArmReceive(connection!);
                break;
            case RequestKind.Send or RequestKind.SendMessage:
                var send = NextSqe();
                send->Opcode = request.Kind == RequestKind.Send ? OpSend : OpSendMsg;
                send->Flags = SqeFixedFile;
                send->Fd = connection!.Slot;
                send->Addr = (ulong)request.Address;
                send->Len = request.Kind == RequestKind.Send ? (uint)request.Length : 1; // sendmsg: one msghdr
                send->OpFlags = MsgNoSignal;
                send->UserData = UserData(OperationKind.Send, connection.Slot);
                connection.PendingOperations++;
                break;
            case RequestKind.Shutdown:
                Shutdown(connection!);
                break;
            case RequestKind.StopReceiving:
                connection!.OnReceiveEnded(0);
                TryClose(connection);
                break;
            case RequestKind.SendingEnded:
                connection!.SendingEnded = true;
                Shutdown(connection);
                TryClose(connection);
                break;
            case RequestKind.Accept:
                ArmAccept(request.Length);
                break;
            case RequestKind.StopAccepting:
                StopAccepting(request.Listener!);
                break;
            case RequestKind.Stop:
                _stopping = true;
                break;
        }
    }

    private void ArmWake()
    {
        if (_stopping)
        {
            return;
        }

        var sqe = NextSqe();
        sqe->Opcode = OpRead;
        sqe->Fd = _eventFd;
        sqe->Addr = (ulong)_wakeBuffer;
        sqe->Len = sizeof(ulong);
        sqe->UserData = UserData(OperationKind.Wake, 0);
    }

    private void ArmAccept(int index)
    {
        var listener = _transport.Listener(index);
        if (_stopping || _armedFor[index] is not null || listener is null)
        {
            return;
        }

        // An accept the table has no slot for would take the connection off the backlog and then reset it: arm one
        // only with a slot free for it. A full ring leaves connections in the backlog, for the other rings or for later.
        if (_slotsInUse + _armedCount >= _slots)
        {
            _acceptsParked |= 1u << index;
            _transport.NoteTableFull();
            return;
        }

        var address = _acceptAddresses + (index * AcceptAddressBytes);
        *(uint*)(address + 128) = 128;
        var sqe = NextSqe();
        sqe->Opcode = OpAccept;
        sqe->Fd = listener.SocketFd;
        sqe->Addr = (ulong)address;
        sqe->Off = (ulong)(address + 128); // the address length, in and out
        sqe->FileIndex = FileIndexAlloc;    // a direct descriptor, in a free slot of the ring's table
        sqe->UserData = UserData(OperationKind.Accept, index);
        _armedFor[index] = listener;
        _armedCount++;
    }

    // The listener was unbound: cancel its accept on this ring; the ring lets go of its socket once that has completed.
    private void StopAccepting(IoUringConnectionListener listener)
    {
        var index = listener.Index;
        if (_armedFor[index] != listener)
        {
            listener.RingReleased(); // nothing of it pending here (a parked accept is re-armed only for a live listener)
            return;
        }

        _releasing[index] = listener;
        var cancel = NextSqe();
        cancel->Opcode = OpAsyncCancel;
        cancel->Addr = UserData(OperationKind.Accept, index);
        cancel->UserData = UserData(OperationKind.Cancel, 0);
    }

    private void Accepted(int index, int result)
    {
        var listener = _armedFor[index]!;
        _armedFor[index] = null;
        _armedCount--;
        var live = _transport.Listener(index) == listener;
        if (_releasing[index] == listener)
        {
            _releasing[index] = null;
            listener.RingReleased();
        }

        if (result >= 0)
        {
            Debug.Assert(_connections[result] is null, "the kernel gave a slot that is in use");
            _slotsInUse++;
            var address = _acceptAddresses + (index * AcceptAddressBytes);
            var connection = new IoUringConnection(this, result, listener.EndPoint, SocketAddresses.Parse(new ReadOnlySpan<byte>(address, 128)), _transport.PipeOptions);
            _connections[result] = connection;
            if (!live || !listener.TryAdd(connection))
            {
                // Accepted as the listener stopped: close it at once.
                connection.Abort();
            }

            ArmReceive(connection);
            connection.StartSending();
            ArmAccept(index);
            return;
        }

        switch (-result)
        {
            case ENFile or EMFile:
                // Not expected (accepts are armed only with a slot free), but if the table is full: wait for a slot.
                _acceptsParked |= 1u << index;
                break;
            case ECanceled:
                ArmAccept(index); // only if another listener has taken the index since
                break;
            case EBadF or ENotSock or EInval or EOpNotSupp:
                // The listening socket is gone or unusable: accepting again would fail at once, forever.
                _transport.NoteAcceptFailed(listener, -result);
                break;
            default:
                ArmAccept(index); // a connection that failed before it was accepted (reset, aborted): go on
                break;
        }
    }

    private void RearmParkedAccepts()
    {
        var parked = _acceptsParked;
        _acceptsParked = 0;
        for (var listener = 0; parked != 0; listener++, parked >>= 1)
        {
            if ((parked & 1) != 0)
            {
                ArmAccept(listener);
            }
        }
    }

    private void ArmReceive(IoUringConnection connection)
    {
        if (_stopping || connection.ReceiveEnded || connection.ReceivePending)
        {
            return;
        }

        var sqe = NextSqe();
        sqe->Opcode = OpRecv;
        sqe->Flags = SqeFixedFile | SqeBufferSelect;
        sqe->Fd = connection.Slot;
        sqe->BufGroup = BufferGroup;
        sqe->UserData = UserData(OperationKind.Receive, connection.Slot);
        connection.ReceivePending = true;
        connection.PendingOperations++;
    }

    private void Received(IoUringConnection connection, int result, uint flags)
    {
        connection.ReceivePending = false;
        connection.PendingOperations--;
        if ((flags & CqeFlagBuffer) != 0)
        {
            var id = (ushort)(flags >> CqeBufferShift);
            var receiveAgain = result > 0 && connection.OnReceived(Buffer(id, result));
            AddBuffer(id);
            if (receiveAgain)
            {
                ArmReceive(connection);
            }
        }

        if (result > 0)
        {
            TryClose(connection); // the application may have stopped reading
            return;
        }

        if (result == -ENoBufs)
        {
            _waitingForBuffers.Add(connection); // every buffer is in use until this batch of completions is done
        }
        else if (result == -EIntr || result == -EAgain)
        {
            ArmReceive(connection);
        }
        else
        {
            connection.OnReceiveEnded(result);
        }

        TryClose(connection);
    }

    private void Shutdown(IoUringConnection connection)
    {
        if (connection.ShutdownRequested)
        {
            return;
        }

        connection.ShutdownRequested = true;
        var sqe = NextSqe();
        sqe->Opcode = OpShutdown;
        sqe->Flags = SqeFixedFile;
        sqe->Fd = connection.Slot;
        sqe->Len = ShutRdWr;
        sqe->UserData = UserData(OperationKind.Shutdown, connection.Slot);
        connection.PendingOperations++;
    }

    /// <summary>Closes the socket once nothing is pending on it and neither side will use it again.</summary>
    public void TryClose(IoUringConnection connection)
    {
        if (connection.CloseRequested || connection.PendingOperations > 0 || !connection.SendingEnded || !connection.ReceiveEnded)
        {
            return;
        }

        connection.CloseRequested = true;
        var sqe = NextSqe();
        sqe->Opcode = OpClose;
        sqe->FileIndex = (uint)connection.Slot + 1;
        sqe->UserData = UserData(OperationKind.Close, connection.Slot);
    }

    private void AddBuffer(ushort id)
    {
        var entry = _bufferRing + ((_bufferTail & _bufferMask) * 16);
        *(ulong*)entry = (ulong)(_buffers + ((nint)id * _bufferSize));
        *(uint*)(entry + 8) = (uint)_bufferSize;
        *(ushort*)(entry + 12) = id; // the last two bytes of entry 0 are the ring's tail: never written here
        _bufferTail++;
    }

    private void PublishBuffers() => Volatile.Write(ref *_bufferRingTail, _bufferTail);

    private static ulong UserData(OperationKind kind, int index) => ((ulong)kind << 56) | (uint)index;

    private enum OperationKind : byte
    {
        None,
        Wake,
        Accept,
        Receive,
        Send,
        Shutdown,
        Close,
        Cancel,
    }
}

internal enum RequestKind : byte
{
    Receive,
    StopReceiving,
    Send,
    SendMessage,
    Shutdown,
    SendingEnded,
    Accept,
    StopAccepting,
    Stop,
}

/// <summary>What another thread asks of a ring's thread. <see cref="Length"/> is the listener's index for Accept.</summary>
internal readonly record struct Request(RequestKind Kind, IoUringConnection? Connection, nint Address = 0, int Length = 0, IoUringConnectionListener? Listener = null);
