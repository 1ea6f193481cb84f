using System.Text;

namespace Broker.Stomp;

/// <summary>
/// A read-only view of a frame's headers. A parsed frame's view is valid until the parser's next
/// <see cref="StompParser.TryParse"/>; copy what you keep (<see cref="ToList"/> or <see cref="GetString(string)"/>).
/// </summary>
public readonly struct StompHeaders : IEquatable<StompHeaders>
{
    private readonly StompHeaderTable? _table;

    /// <summary>Wraps a table.</summary>
    public StompHeaders(StompHeaderTable table) => _table = table;

    /// <summary>No headers.</summary>
    public static StompHeaders Empty => default;

    /// <summary>How many headers, repeated ones included.</summary>
    public int Count => _table?.Count ?? 0;

    /// <summary>The i-th header's decoded name.</summary>
    public ReadOnlySpan<byte> GetName(int index) => Table.GetName(index);

    /// <summary>The i-th header's decoded value.</summary>
    public ReadOnlySpan<byte> GetValue(int index) => Table.GetValue(index);

    /// <summary>The value of the first header with this name.</summary>
    public bool TryGetValue(ReadOnlySpan<byte> name, out ReadOnlySpan<byte> value)
    {
        if (_table is null)
        {
            value = default;
            return false;
        }

        return _table.TryGetValue(name, out value);
    }

    /// <summary>Whether a header with this name is present.</summary>
    public bool Contains(ReadOnlySpan<byte> name) => TryGetValue(name, out _);

    /// <summary>The first value of <paramref name="name"/> as a string, or null when absent. Allocates.</summary>
    public string? GetString(ReadOnlySpan<byte> name) =>
        TryGetValue(name, out var value) ? Encoding.UTF8.GetString(value) : null;

    /// <summary>The first value of <paramref name="name"/> as a string, or null when absent. Allocates.</summary>
    public string? GetString(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        Span<byte> utf8 = stackalloc byte[Encoding.UTF8.GetMaxByteCount(Math.Min(name.Length, 128))];
        if (name.Length > 128)
        {
            return GetString(Encoding.UTF8.GetBytes(name));
        }

        var length = Encoding.UTF8.GetBytes(name, utf8);
        return GetString(utf8[..length]);
    }

    /// <summary>Every header as strings, in order, repeats included. Allocates.</summary>
    public List<KeyValuePair<string, string>> ToList()
    {
        var list = new List<KeyValuePair<string, string>>(Count);
        for (var i = 0; i < Count; i++)
        {
            list.Add(new(Encoding.UTF8.GetString(GetName(i)), Encoding.UTF8.GetString(GetValue(i))));
        }

        return list;
    }

    /// <inheritdoc/>
    public bool Equals(StompHeaders other) => ReferenceEquals(_table, other._table);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is StompHeaders other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => _table?.GetHashCode() ?? 0;

    /// <summary>Same underlying table.</summary>
    public static bool operator ==(StompHeaders left, StompHeaders right) => left.Equals(right);

    /// <summary>Different underlying tables.</summary>
    public static bool operator !=(StompHeaders left, StompHeaders right) => !left.Equals(right);

    private StompHeaderTable Table => _table ?? throw new ArgumentOutOfRangeException("index", "The frame has no headers.");
}
