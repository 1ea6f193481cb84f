using System.Buffers;
using System.IO.Pipelines;

namespace Broker.Transports.WebSockets;

/// <summary>
/// The session's view of a WebSocket: the payload of its data messages as one byte stream. The bytes are decoded into
/// one array rented from <see cref="ArrayPool{T}.Shared"/> when the session reads and has examined everything decoded
/// so far (<see cref="WebSocketTransport"/> reads the connection's pipe then): no second pipe and no receive loop, and
/// an idle connection holds no buffer, since the array goes back to the pool once the session has consumed it all.
/// Single reader, as for any <see cref="PipeReader"/>; the transport writes into it (as an
/// <see cref="IBufferWriter{T}"/>) only from within a read.
/// </summary>
internal sealed class PayloadReader : PipeReader, IBufferWriter<byte>
{
    private const int MinimumBufferSize = 4 * 1024;

    private readonly WebSocketTransport _transport;
    private byte[]? _buffer;
    private int _start; // the first byte not consumed
    private int _examined; // the end of what the session has looked at
    private int _end; // the end of what was decoded

    public PayloadReader(WebSocketTransport transport) => _transport = transport;

    /// <summary>The peer has no more to send (its close, the socket's end, or a violation): reads complete.</summary>
    public bool IsEnded { get; private set; }

    /// <summary>Whether an array is rented now (for tests).</summary>
    internal bool HoldsBuffer => _buffer is not null;

    /// <summary>Whether decoded bytes wait that the session has not examined yet.</summary>
    public bool HasUnexamined => _examined < _end;

    private ReadOnlySequence<byte> Sequence => _buffer is null ? ReadOnlySequence<byte>.Empty : new ReadOnlySequence<byte>(_buffer, _start, _end - _start);

    public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default) =>
        TryRead(out var result) ? new ValueTask<ReadResult>(result) : _transport.ReceiveAsync(cancellationToken);

    public override bool TryRead(out ReadResult result)
    {
        if (HasUnexamined || IsEnded)
        {
            result = Result();
            return true;
        }

        result = default;
        return false;
    }

    /// <summary>What a read returns now.</summary>
    public ReadResult Result(bool isCanceled = false) => new(Sequence, isCanceled, isCompleted: IsEnded && !isCanceled);

    /// <summary>Marks the end of the peer's data: what is buffered is still read, then reads complete.</summary>
    public ReadResult End()
    {
        IsEnded = true;
        return Result();
    }

    public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
    {
        if (_buffer is null)
        {
            return; // the empty sequence: nothing to consume
        }

        var consumedAt = IndexOf(consumed);
        var examinedAt = IndexOf(examined);
        if (consumedAt < _start || examinedAt < consumedAt || examinedAt > _end)
        {
            throw new InvalidOperationException("AdvanceTo was given a position outside the buffer last read, or examined before consumed.");
        }

        _start = consumedAt;
        _examined = Math.Max(_examined, examinedAt);
        if (_start == _end)
        {
            ReturnBuffer();
        }
    }

    /// <summary>Wakes a pending read with <see cref="ReadResult.IsCanceled"/> (or the next one, if none is pending).</summary>
    public override void CancelPendingRead() => _transport.CancelPendingReceive();

    public override void Complete(Exception? exception = null) => ReturnBuffer();

    public void Advance(int count)
    {
        if ((uint)count > (uint)((_buffer?.Length ?? 0) - _end))
        {
            throw new InvalidOperationException("Advanced past the end of the buffer.");
        }

        _end += count;
    }

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsMemory(_end);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsSpan(_end);
    }

    private int IndexOf(SequencePosition position) =>
        ReferenceEquals(position.GetObject(), _buffer) ? position.GetInteger() : throw new InvalidOperationException("AdvanceTo was given a position from another buffer.");

    // Room for sizeHint more bytes at the end: the unconsumed bytes move to the front, or to a bigger array. The
    // session holds no position into the buffer here (it reads again only after AdvanceTo), so moving them is safe.
    private void Ensure(int sizeHint)
    {
        sizeHint = Math.Max(sizeHint, 1);
        if (_buffer is null)
        {
            _buffer = ArrayPool<byte>.Shared.Rent(Math.Max(sizeHint, MinimumBufferSize));
            return;
        }

        if (_buffer.Length - _end >= sizeHint)
        {
            return;
        }

        var kept = _end - _start;
        var target = _buffer;
        if (kept + sizeHint > _buffer.Length)
        {
            var size = (int)Math.Min(Math.Max((long)kept + sizeHint, (long)_buffer.Length * 2), Array.MaxLength);
            target = ArrayPool<byte>.Shared.Rent(size);
        }

        _buffer.AsSpan(_start, kept).CopyTo(target);
        if (target != _buffer)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = target;
        }

        _examined -= _start;
        _end = kept;
        _start = 0;
    }

    private void ReturnBuffer()
    {
        var buffer = _buffer;
        _buffer = null;
        _start = _examined = _end = 0;
        if (buffer is not null)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
