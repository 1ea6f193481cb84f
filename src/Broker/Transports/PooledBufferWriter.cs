using System.Buffers;

namespace Broker.Transports;

/// <summary>
/// An <see cref="IBufferWriter{T}"/> over one array rented from <see cref="ArrayPool{T}.Shared"/> when something is
/// written, and given back by <see cref="Reset"/>: an idle connection holds no output buffer. The next rent starts at
/// the size the last one grew to (within bounds), so a connection that sends in bursts does not grow and copy again
/// every time. Single writer, not thread-safe.
/// </summary>
internal sealed class PooledBufferWriter : IBufferWriter<byte>
{
    // A burst rarely needs more than this; a rare larger frame grows the buffer once, but is not remembered.
    private const int MaxRememberedSize = 256 * 1024;

    private readonly int _initialSize;
    private int _nextSize;
    private byte[]? _buffer;
    private int _written;

    public PooledBufferWriter(int initialSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(initialSize);
        _initialSize = _nextSize = initialSize;
    }

    /// <summary>Bytes written since the last <see cref="Reset"/>.</summary>
    public int WrittenCount => _written;

    /// <summary>What was written since the last <see cref="Reset"/>.</summary>
    public ReadOnlyMemory<byte> WrittenMemory => _buffer is null ? ReadOnlyMemory<byte>.Empty : _buffer.AsMemory(0, _written);

    /// <summary>Whether a buffer is rented now (for tests).</summary>
    internal bool HoldsBuffer => _buffer is not null;

    public void Advance(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (count > (_buffer?.Length ?? 0) - _written)
        {
            throw new InvalidOperationException("Advanced past the end of the buffer.");
        }

        _written += count;
    }

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsMemory(_written);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsSpan(_written);
    }

    /// <summary>Forgets what was written and gives the buffer back to the pool; the next write rents one again.</summary>
    public void Reset()
    {
        var buffer = _buffer;
        if (buffer is null)
        {
            return;
        }

        _nextSize = Math.Clamp(buffer.Length, _initialSize, Math.Max(_initialSize, MaxRememberedSize));
        _buffer = null;
        _written = 0;
        ArrayPool<byte>.Shared.Return(buffer);
    }

    private void Ensure(int sizeHint)
    {
        sizeHint = Math.Max(sizeHint, 1);
        if (_buffer is null)
        {
            _buffer = ArrayPool<byte>.Shared.Rent(Math.Max(sizeHint, _nextSize));
            return;
        }

        if (_buffer.Length - _written >= sizeHint)
        {
            return;
        }

        var needed = (long)_written + sizeHint;
        var size = (int)Math.Min(Math.Max(needed, (long)_buffer.Length * 2), Array.MaxLength);
        if (size < needed)
        {
            throw new InvalidOperationException("The output buffer cannot grow past the largest array.");
        }

        var bigger = ArrayPool<byte>.Shared.Rent(size);
        _buffer.AsSpan(0, _written).CopyTo(bigger);
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = bigger;
    }
}
