using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Runtime.InteropServices;
using System.Threading.Tasks.Sources;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;

namespace Broker.Transports.IoUring;

/// <summary>
/// One accepted socket of the io_uring transport, as Kestrel sees it. The ring's thread copies what arrives into
/// <see cref="_input"/>; <see cref="SendLoopAsync"/> sends what the application writes to <see cref="_output"/>, one
/// send (or one sendmsg of several segments) at a time. The socket is closed (its slot in the ring's table freed) once both directions have ended and no
/// operation on it is pending. The fields in the "ring's thread" group are only read and written there.
/// </summary>
internal sealed class IoUringConnection : ConnectionContext, IDuplexPipe, IValueTaskSource<int>,
    IConnectionIdFeature, IConnectionTransportFeature, IConnectionItemsFeature, IConnectionLifetimeFeature, IConnectionEndPointFeature
{
    private static long s_lastNumber;

    private readonly IoUringRing _ring;
    private readonly Pipe _input;
    private readonly Pipe _output;
    private readonly long _number = Interlocked.Increment(ref s_lastNumber);
    private readonly CancellationTokenSource _closedSource = new();
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly FeatureCollection _features = new(8);
    private ManualResetValueTaskSourceCore<int> _sendResult = new() { RunContinuationsAsynchronously = true };
    private IDuplexPipe _transport;
    private IDictionary<object, object?>? _items;
    private string? _id;
    private volatile ConnectionAbortedException? _abortReason;

    // The ring's thread.
    internal int PendingOperations;
    internal bool ReceivePending;
    internal bool ReceiveEnded;
    internal bool SendingEnded;
    internal bool ShutdownRequested;
    internal bool CloseRequested;

    public IoUringConnection(IoUringRing ring, int slot, EndPoint? localEndPoint, EndPoint? remoteEndPoint, IoUringPipeOptions options)
    {
        _ring = ring;
        Slot = slot;
        LocalEndPoint = localEndPoint;
        RemoteEndPoint = remoteEndPoint;
        _input = new Pipe(options.Input);
        _output = new Pipe(options.Output);
        _transport = this;
        ConnectionClosed = _closedSource.Token;
        _features.Set<IConnectionIdFeature>(this);
        _features.Set<IConnectionTransportFeature>(this);
        _features.Set<IConnectionItemsFeature>(this);
        _features.Set<IConnectionLifetimeFeature>(this);
        _features.Set<IConnectionEndPointFeature>(this);
    }

    /// <summary>The socket's slot in its ring's table of direct descriptors.</summary>
    public int Slot { get; }

    public override string ConnectionId
    {
        get => _id ??= $"uring-{_number:x}";
        set => _id = value;
    }

    public override IFeatureCollection Features => _features;

    public override IDictionary<object, object?> Items
    {
        get => _items ??= new ConnectionItems();
        set => _items = value;
    }

    public override IDuplexPipe Transport
    {
        get => _transport;
        set => _transport = value;
    }

    PipeReader IDuplexPipe.Input => _input.Reader;

    PipeWriter IDuplexPipe.Output => _output.Writer;

    public override void Abort(ConnectionAbortedException abortReason)
    {
        _abortReason ??= abortReason;
        _output.Reader.CancelPendingRead();
        _ring.Post(new Request(RequestKind.Shutdown, this)); // also ends a send a peer that reads nothing holds up
    }

    public override async ValueTask DisposeAsync()
    {
        await _input.Reader.CompleteAsync();
        await _output.Writer.CompleteAsync();
        await _closed.Task;
        _closedSource.Dispose();
        await base.DisposeAsync();
    }

    /// <summary>On the ring's thread, once accepted: starts the loop that sends what the application writes.</summary>
    public void StartSending() => _ = SendLoopAsync();

    /// <summary>
    /// On the ring's thread: bytes arrived; they are copied out before the buffer goes back to the ring. True when
    /// the ring should receive again now; otherwise it will be asked once the application has read, or not at all.
    /// </summary>
    public bool OnReceived(ReadOnlySpan<byte> bytes)
    {
        var writer = _input.Writer;
        bytes.CopyTo(writer.GetSpan(bytes.Length));
        writer.Advance(bytes.Length);
        var flush = writer.FlushAsync();
        if (!flush.IsCompletedSuccessfully)
        {
            _ = ReceiveAfterFlushAsync(flush); // the application is behind: receive again once it has read
            return false;
        }

        if (flush.Result.IsCompleted)
        {
            OnReceiveEnded(0); // the application reads no more
            return false;
        }

        return true;
    }

    private async Task ReceiveAfterFlushAsync(ValueTask<FlushResult> flush)
    {
        var readerGone = true;
        try
        {
            readerGone = (await flush).IsCompleted;
        }
        catch (InvalidOperationException)
        {
        }

        _ring.Post(new Request(readerGone ? RequestKind.StopReceiving : RequestKind.Receive, this));
    }

    /// <summary>On the ring's thread: the peer closed (0), the receive failed (-errno), or nobody reads any more.</summary>
    public void OnReceiveEnded(int result)
    {
        if (ReceiveEnded)
        {
            return;
        }

        ReceiveEnded = true;
        Exception? error = (Exception?)_abortReason ?? (result < 0 && result != -IoUringNative.ECanceled
            ? new ConnectionResetException(IoUringNative.Error("recv", -result).Message)
            : null);
        _input.Writer.Complete(error);
        ThreadPool.UnsafeQueueUserWorkItem(static connection => connection.SignalClosed(), this, preferLocal: false);
    }

    private void SignalClosed()
    {
        try
        {
            _closedSource.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // Disposed already: nobody waits for the signal.
        }
    }

    private async Task SendLoopAsync()
    {
        var reader = _output.Reader;
        var gather = default(GatherBuffers);
        Exception? error = null;
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync();
                if (result.IsCanceled)
                {
                    break;
                }

                var buffer = result.Buffer;
                var sentAll = buffer.IsSingleSegment
                    ? await SendAsync(buffer.First)
                    : await SendGatheredAsync(buffer, gather ??= new GatherBuffers());
                if (!sentAll)
                {
                    break;
                }

                reader.AdvanceTo(buffer.End);
                if (result.IsCompleted)
                {
                    break;
                }
            }
        }
        catch (Exception ex)
        {
            error = ex;
        }
        finally
        {
            gather?.Dispose(); // no send is pending: each was awaited
            await reader.CompleteAsync(error);
            _ring.Post(new Request(RequestKind.SendingEnded, this));
        }
    }

    private async ValueTask<bool> SendAsync(ReadOnlyMemory<byte> segment)
    {
        using var pinned = segment.Pin();
        var address = AddressOf(pinned);
        var offset = 0;
        while (offset < segment.Length)
        {
            _ring.Post(new Request(RequestKind.Send, this, address + offset, segment.Length - offset));
            var sent = await new ValueTask<int>(this, _sendResult.Version);
            if (sent <= 0)
            {
                return false; // the peer is gone (EPIPE, ECONNRESET) or the connection was shut down
            }

            offset += sent;
        }

        return true;
    }

    // Several segments (a batch of frames, a large frame) go in one sendmsg of up to GatherBuffers.MaxSegments, not
    // one send and one trip through the ring's thread each.
    private async ValueTask<bool> SendGatheredAsync(ReadOnlySequence<byte> buffer, GatherBuffers gather)
    {
        while (!buffer.IsEmpty)
        {
            var message = gather.Pin(buffer);
            int sent;
            try
            {
                _ring.Post(new Request(RequestKind.SendMessage, this, message));
                sent = await new ValueTask<int>(this, _sendResult.Version);
            }
            finally
            {
                gather.Unpin();
            }

            if (sent <= 0)
            {
                return false;
            }

            buffer = buffer.Slice(sent);
        }

        return true;
    }

    private static unsafe nint AddressOf(MemoryHandle pinned) => (nint)pinned.Pointer;

    /// <summary>On the ring's thread: the send finished, <paramref name="result"/> bytes or -errno.</summary>
    public void OnSent(int result) => _sendResult.SetResult(result);

    /// <summary>On the ring's thread: the socket is closed and its slot free.</summary>
    public void OnClosed() => _closed.TrySetResult();

    /// <summary>
    /// On the ring's thread as it stops: closing the ring closed the socket; end whatever still waits. No send is
    /// pending by then (the ring cancelled and reaped every operation), and one not yet submitted is failed with its
    /// request.
    /// </summary>
    public void OnRingStopped()
    {
        OnReceiveEnded(-IoUringNative.ECanceled);
        _closed.TrySetResult();
    }

    int IValueTaskSource<int>.GetResult(short token)
    {
        var result = _sendResult.GetResult(token);
        _sendResult.Reset();
        return result;
    }

    ValueTaskSourceStatus IValueTaskSource<int>.GetStatus(short token) => _sendResult.GetStatus(token);

    void IValueTaskSource<int>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _sendResult.OnCompleted(continuation, state, token, flags);
}

/// <summary>The pipes' settings, shared by every connection of the transport.</summary>
internal sealed class IoUringPipeOptions(long maxReadBufferSize)
{
    // The ring's thread writes the input and must never run application code: the application reads on the thread pool.
    public PipeOptions Input { get; } = new(
        pauseWriterThreshold: maxReadBufferSize,
        resumeWriterThreshold: maxReadBufferSize / 2,
        readerScheduler: PipeScheduler.ThreadPool,
        writerScheduler: PipeScheduler.Inline,
        useSynchronizationContext: false);

    // Sending starts on the thread that flushed: handing the bytes to the ring is all it does.
    public PipeOptions Output { get; } = new(
        pauseWriterThreshold: 64 * 1024,
        resumeWriterThreshold: 32 * 1024,
        readerScheduler: PipeScheduler.Inline,
        writerScheduler: PipeScheduler.Inline,
        useSynchronizationContext: false);
}

/// <summary>
/// A send loop's msghdr and iovecs (native, so the kernel can read them while the send is pending) and the pins of the
/// segments they point at. Made on a connection's first send of more than one segment: an idle connection has none.
/// </summary>
internal sealed unsafe class GatherBuffers : IDisposable
{
    public const int MaxSegments = 32;
    private const int MessageHeaderBytes = 56; // struct msghdr on 64-bit Linux
    private const int IoVectorBytes = 16;      // struct iovec

    private readonly byte* _native = (byte*)NativeMemory.AllocZeroed(MessageHeaderBytes + (MaxSegments * IoVectorBytes));
    private readonly MemoryHandle[] _pins = new MemoryHandle[MaxSegments];
    private int _pinned;

    /// <summary>Pins the first segments of <paramref name="buffer"/> and returns the msghdr that describes them.</summary>
    public nint Pin(ReadOnlySequence<byte> buffer)
    {
        var vectors = _native + MessageHeaderBytes;
        foreach (var segment in buffer)
        {
            if (segment.IsEmpty)
            {
                continue;
            }

            if (_pinned == MaxSegments)
            {
                break;
            }

            _pins[_pinned] = segment.Pin();
            var vector = vectors + (_pinned * IoVectorBytes);
            *(nint*)vector = (nint)_pins[_pinned].Pointer;
            *(nint*)(vector + 8) = segment.Length;
            _pinned++;
        }

        *(nint*)(_native + 16) = (nint)vectors; // msg_iov
        *(nint*)(_native + 24) = _pinned;       // msg_iovlen
        return (nint)_native;
    }

    public void Unpin()
    {
        for (var i = 0; i < _pinned; i++)
        {
            _pins[i].Dispose();
        }

        _pinned = 0;
    }

    public void Dispose()
    {
        Unpin();
        NativeMemory.Free(_native);
    }
}
