using System.Buffers;
using Broker.Stomp.Internal;

namespace Broker.Stomp;

/// <summary>
/// A MESSAGE encoded once and written for any number of subscribers: the shared headers and the
/// <c>content-length</c> are escaped once per protocol version, the body is shared, and each subscriber adds only its
/// own <c>subscription</c>, <c>message-id</c> and <c>ack</c>. Immutable after construction; safe to write from many threads.
/// </summary>
public sealed class StompMessageTemplate
{
    private readonly byte[] _decodedHeaders;
    private readonly (int NameLength, int ValueLength)[] _headerLengths;
    private byte[]? _blockV10;
    private byte[]? _blockV11;
    private byte[]? _blockV12;

    private const int MaxKeptBlockWriterCapacity = 16 * 1024;

    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_blockWriter;

    /// <summary>
    /// Creates the template. A <c>content-length</c> in <paramref name="headers"/> is ignored (the body's real length
    /// is written), and so are <c>subscription</c>, <c>message-id</c> and <c>ack</c>, which each subscriber gets its own of.
    /// </summary>
    public StompMessageTemplate(StompHeaders headers, ReadOnlyMemory<byte> body)
    {
        Body = body;
        var size = 0;
        var kept = 0;
        for (var i = 0; i < headers.Count; i++)
        {
            if (!IsPerSubscriber(headers.GetName(i)))
            {
                size += headers.GetName(i).Length + headers.GetValue(i).Length;
                kept++;
            }
        }

        _decodedHeaders = new byte[size];
        _headerLengths = new (int, int)[kept];
        var at = 0;
        var index = 0;
        for (var i = 0; i < headers.Count; i++)
        {
            var name = headers.GetName(i);
            if (IsPerSubscriber(name))
            {
                continue;
            }

            var value = headers.GetValue(i);
            name.CopyTo(_decodedHeaders.AsSpan(at));
            value.CopyTo(_decodedHeaders.AsSpan(at + name.Length));
            at += name.Length + value.Length;
            _headerLengths[index++] = (name.Length, value.Length);
        }
    }

    /// <summary>Creates the template from string headers.</summary>
    public static StompMessageTemplate Create(IEnumerable<KeyValuePair<string, string>> headers, ReadOnlyMemory<byte> body)
    {
        ArgumentNullException.ThrowIfNull(headers);
        // The constructor copies what it keeps, so the temporary table goes back to the pool at once.
        using var table = new StompHeaderTable();
        foreach (var (name, value) in headers)
        {
            table.Add(name, value);
        }

        return new StompMessageTemplate(new StompHeaders(table), body);
    }

    /// <summary>The shared headers, decoded, in order (for bridging to other protocols). Allocates.</summary>
    public List<KeyValuePair<string, string>> GetHeaders()
    {
        var headers = new List<KeyValuePair<string, string>>(_headerLengths.Length);
        var at = 0;
        foreach (var (nameLength, valueLength) in _headerLengths)
        {
            headers.Add(new(
                System.Text.Encoding.UTF8.GetString(_decodedHeaders, at, nameLength),
                System.Text.Encoding.UTF8.GetString(_decodedHeaders, at + nameLength, valueLength)));
            at += nameLength + valueLength;
        }

        return headers;
    }

    /// <summary>The shared body.</summary>
    public ReadOnlyMemory<byte> Body { get; }

    /// <summary>Bytes one subscriber's frame takes, for flow control, before its per-subscriber headers.</summary>
    public int ApproximateSize => _decodedHeaders.Length + (_headerLengths.Length * 2) + Body.Length + 64;

    /// <summary>
    /// Writes the MESSAGE for one subscriber. <paramref name="ack"/> is left out when empty (auto-ack subscriptions).
    /// The per-subscriber headers come first, so a sender cannot shadow them with headers of its own.
    /// </summary>
    public void WriteTo(IBufferWriter<byte> output, StompVersion version, ReadOnlySpan<byte> subscription, ReadOnlySpan<byte> messageId, ReadOnlySpan<byte> ack) =>
        WriteTo(output, version, subscription, messageId, ack, redelivered: false);

    /// <summary>
    /// Writes the MESSAGE for one subscriber, with <c>redelivered:true</c> when the message was delivered before
    /// (NACKed, or its consumer went away).
    /// </summary>
    public void WriteTo(IBufferWriter<byte> output, StompVersion version, ReadOnlySpan<byte> subscription, ReadOnlySpan<byte> messageId, ReadOnlySpan<byte> ack, bool redelivered)
    {
        ArgumentNullException.ThrowIfNull(output);
        var mode = HeaderEscaping.GetMode(StompCommand.Message, version);
        StompWriter.WriteCommand(output, StompCommand.Message);
        StompWriter.WriteHeader(output, mode, StompHeaderNames.Subscription, subscription);
        StompWriter.WriteHeader(output, mode, StompHeaderNames.MessageId, messageId);
        if (!ack.IsEmpty)
        {
            StompWriter.WriteHeader(output, mode, StompHeaderNames.Ack, ack);
        }

        if (redelivered)
        {
            output.Write("redelivered:true\n"u8);
        }

        output.Write(GetBlock(version, mode));
        output.Write(Body.Span);
        output.GetSpan(1)[0] = 0;
        output.Advance(1);
    }

    // The shared headers, content-length and the blank line, escaped for one version; made on first use.
    private byte[] GetBlock(StompVersion version, EscapeMode mode)
    {
        // A race makes the same bytes twice; either copy is right, so no lock.
        return version switch
        {
            StompVersion.V1_0 => _blockV10 ??= EncodeBlock(mode),
            StompVersion.V1_1 => _blockV11 ??= EncodeBlock(mode),
            _ => _blockV12 ??= EncodeBlock(mode),
        };
    }

    private byte[] EncodeBlock(EscapeMode mode)
    {
        // Once per message and version: the block is escaped into a writer kept per thread, and only its exact copy
        // is allocated. A writer grown past an ordinary header block is let go rather than kept.
        var output = t_blockWriter ??= new ArrayBufferWriter<byte>(1024);
        output.ResetWrittenCount();
        var at = 0;
        foreach (var (nameLength, valueLength) in _headerLengths)
        {
            var name = _decodedHeaders.AsSpan(at, nameLength);
            var value = _decodedHeaders.AsSpan(at + nameLength, valueLength);
            StompWriter.WriteHeader(output, mode, name, value);
            at += nameLength + valueLength;
        }

        StompWriter.WriteHeader(output, StompHeaderNames.ContentLength, Body.Length);
        output.GetSpan(1)[0] = (byte)'\n';
        output.Advance(1);
        var block = output.WrittenSpan.ToArray();
        if (output.Capacity > MaxKeptBlockWriterCapacity)
        {
            t_blockWriter = null;
        }

        return block;
    }

    private static bool IsPerSubscriber(ReadOnlySpan<byte> name) =>
        name.SequenceEqual(StompHeaderNames.ContentLength) || name.SequenceEqual(StompHeaderNames.Subscription)
        || name.SequenceEqual(StompHeaderNames.MessageId) || name.SequenceEqual(StompHeaderNames.Ack)
        || name.SequenceEqual("redelivered"u8);
}
