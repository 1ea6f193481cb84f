using System.Buffers;
using System.Text;

namespace Broker.Stomp;

/// <summary>
/// Headers in arrival order with every occurrence kept, stored as decoded UTF-8 in one pooled buffer.
/// The parser reuses one table per connection, so parsing allocates nothing; strings are made only when asked for.
/// Not thread-safe. Return the buffers with <see cref="Dispose"/>.
/// </summary>
public sealed class StompHeaderTable : IDisposable
{
    private byte[] _bytes;
    private HeaderRange[] _ranges;
    private int _byteCount;
    private int _count;

    /// <summary>Creates an empty table.</summary>
    public StompHeaderTable()
    {
        _bytes = ArrayPool<byte>.Shared.Rent(256);
        _ranges = ArrayPool<HeaderRange>.Shared.Rent(8);
    }

    /// <summary>How many headers, repeated ones included.</summary>
    public int Count => _count;

    /// <summary>The i-th header's decoded name.</summary>
    public ReadOnlySpan<byte> GetName(int index)
    {
        var r = Range(index);
        return _bytes.AsSpan(r.NameStart, r.NameLength);
    }

    /// <summary>The i-th header's decoded value.</summary>
    public ReadOnlySpan<byte> GetValue(int index)
    {
        var r = Range(index);
        return _bytes.AsSpan(r.NameStart + r.NameLength, r.ValueLength);
    }

    /// <summary>Removes every header, keeping the buffers.</summary>
    public void Clear()
    {
        _byteCount = 0;
        _count = 0;
    }

    /// <summary>Adds a header whose name and value are already decoded.</summary>
    public void Add(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
    {
        var span = Reserve(name.Length + value.Length);
        name.CopyTo(span);
        value.CopyTo(span[name.Length..]);
        Commit(name.Length, value.Length);
    }

    /// <summary>Adds a header from strings, encoded as UTF-8.</summary>
    public void Add(string name, string value)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(value);
        var nameLength = Encoding.UTF8.GetByteCount(name);
        var valueLength = Encoding.UTF8.GetByteCount(value);
        var span = Reserve(nameLength + valueLength);
        Encoding.UTF8.GetBytes(name, span);
        Encoding.UTF8.GetBytes(value, span[nameLength..]);
        Commit(nameLength, valueLength);
    }

    /// <summary>The value of the first header with this name (STOMP: repeated headers keep the first).</summary>
    public bool TryGetValue(ReadOnlySpan<byte> name, out ReadOnlySpan<byte> value)
    {
        var ranges = _ranges.AsSpan(0, _count);
        foreach (ref readonly var r in ranges)
        {
            if (r.NameLength == name.Length && _bytes.AsSpan(r.NameStart, r.NameLength).SequenceEqual(name))
            {
                value = _bytes.AsSpan(r.NameStart + r.NameLength, r.ValueLength);
                return true;
            }
        }

        value = default;
        return false;
    }

    /// <summary>Returns the pooled buffers.</summary>
    public void Dispose()
    {
        if (_bytes.Length != 0)
        {
            ArrayPool<byte>.Shared.Return(_bytes);
            ArrayPool<HeaderRange>.Shared.Return(_ranges);
            _bytes = [];
            _ranges = [];
            _count = 0;
            _byteCount = 0;
        }
    }

    // A span for the next header's name and value, which the caller fills and then passes to Commit.
    internal Span<byte> Reserve(int byteCount)
    {
        ObjectDisposedException.ThrowIf(_bytes.Length == 0 && _ranges.Length == 0, this);
        if (_byteCount + byteCount > _bytes.Length)
        {
            var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(_bytes.Length * 2, _byteCount + byteCount));
            _bytes.AsSpan(0, _byteCount).CopyTo(bigger);
            ArrayPool<byte>.Shared.Return(_bytes);
            _bytes = bigger;
        }

        return _bytes.AsSpan(_byteCount, byteCount);
    }

    internal void Commit(int nameLength, int valueLength)
    {
        if (_count == _ranges.Length)
        {
            var bigger = ArrayPool<HeaderRange>.Shared.Rent(_ranges.Length * 2);
            _ranges.AsSpan(0, _count).CopyTo(bigger);
            ArrayPool<HeaderRange>.Shared.Return(_ranges);
            _ranges = bigger;
        }

        _ranges[_count++] = new HeaderRange(_byteCount, nameLength, valueLength);
        _byteCount += nameLength + valueLength;
    }

    private HeaderRange Range(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, _count);
        return _ranges[index];
    }

    internal readonly record struct HeaderRange(int NameStart, int NameLength, int ValueLength);
}
