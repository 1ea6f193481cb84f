using System.Text;
using System.Text.Json;

namespace Broker.Client;

/// <summary>A MESSAGE from the broker. Immutable, safe to keep; acknowledge it with <see cref="AckAsync"/> in client ack modes.</summary>
public sealed class StompMessage
{
    private readonly StompClient _client;
    private readonly long _connectionEpoch;
    private int _settled;

    internal StompMessage(StompClient client, long connectionEpoch, IReadOnlyList<KeyValuePair<string, string>> headers, ReadOnlyMemory<byte> body)
    {
        _client = client;
        _connectionEpoch = connectionEpoch;
        Headers = headers;
        Body = body;
    }

    /// <summary>Every header, in order, repeats included.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Headers { get; }

    /// <summary>The body.</summary>
    public ReadOnlyMemory<byte> Body { get; }

    /// <summary>The body as UTF-8 text.</summary>
    public string BodyText => Encoding.UTF8.GetString(Body.Span);

    /// <summary>The <c>destination</c> header.</summary>
    public string Destination => GetHeader("destination") ?? "";

    /// <summary>The <c>message-id</c> header.</summary>
    public string MessageId => GetHeader("message-id") ?? "";

    /// <summary>The <c>subscription</c> header.</summary>
    public string SubscriptionId => GetHeader("subscription") ?? "";

    /// <summary>The <c>content-type</c> header, if any.</summary>
    public string? ContentType => GetHeader("content-type");

    /// <summary>The <c>reply-to</c> header: where a request wants its reply.</summary>
    public string? ReplyTo => GetHeader("reply-to");

    /// <summary>The <c>correlation-id</c> header.</summary>
    public string? CorrelationId => GetHeader("correlation-id");

    /// <summary>Whether the broker delivered this message before (<c>redelivered:true</c>).</summary>
    public bool Redelivered => GetHeader("redelivered") == "true";

    /// <summary>The value to acknowledge with: the <c>ack</c> header (1.2), else the message id.</summary>
    internal string AckId => GetHeader("ack") ?? MessageId;

    internal long ConnectionEpoch => _connectionEpoch;

    /// <summary>Whether an ACK or NACK for this message went out (a second one would draw an ERROR from the broker).</summary>
    internal bool IsSettled => Volatile.Read(ref _settled) != 0;

    /// <summary>Claims the one settlement of this message; false when it was settled already.</summary>
    internal bool TryMarkSettled() => Interlocked.Exchange(ref _settled, 1) == 0;

    /// <summary>Gives the settlement back (it was not sent, or its transaction was aborted).</summary>
    internal void ClearSettled() => Volatile.Write(ref _settled, 0);

    /// <summary>The first value of a header, or null.</summary>
    public string? GetHeader(string name)
    {
        foreach (var (key, value) in Headers)
        {
            if (key == name)
            {
                return value;
            }
        }

        return null;
    }

    /// <summary>The body deserialized from JSON.</summary>
    public T? GetJson<T>() => JsonSerializer.Deserialize<T>(Body.Span, _client.Options.JsonOptions);

    /// <summary>
    /// ACK (client and client-individual subscriptions). A message is settled once: a second ACK or NACK does nothing. A
    /// message from a connection since lost, or of a subscription since disposed, needs no ACK: the broker redelivers it.
    /// </summary>
    public async ValueTask AckAsync(CancellationToken cancellationToken = default) => await _client.SettleAsync(this, ack: true, requeue: true, transaction: null, cancellationToken);

    /// <summary>NACK: refuse the message; with <paramref name="requeue"/> false the broker drops it rather than redelivering it.</summary>
    public async ValueTask NackAsync(bool requeue = true, CancellationToken cancellationToken = default) => await _client.SettleAsync(this, ack: false, requeue, transaction: null, cancellationToken);

    /// <inheritdoc/>
    public override string ToString() => $"MESSAGE {Destination} ({Body.Length} bytes)";
}

/// <summary>How a SEND is made.</summary>
public sealed record StompSendOptions
{
    /// <summary>Extra headers (custom ones pass through to subscribers).</summary>
    public IReadOnlyDictionary<string, string>? Headers { get; init; }

    /// <summary>The <c>content-type</c> header.</summary>
    public string? ContentType { get; init; }

    /// <summary>Wait for the broker's RECEIPT: the call completes once the broker has taken the message, or throws its ERROR.</summary>
    public bool WaitForReceipt { get; init; }
}

/// <summary>How a subscription acknowledges.</summary>
public enum StompAckMode
{
    /// <summary>Messages count as acknowledged when sent.</summary>
    Auto,

    /// <summary>ACK is cumulative: it acknowledges the message and every earlier one of the subscription.</summary>
    Client,

    /// <summary>ACK and NACK affect one message only.</summary>
    ClientIndividual,
}

/// <summary>How a SUBSCRIBE is made.</summary>
public sealed record StompSubscribeOptions
{
    /// <summary>The ack mode.</summary>
    public StompAckMode AckMode { get; init; } = StompAckMode.Auto;

    /// <summary>The <c>prefetch-count</c> header: at most this many unacknowledged messages.</summary>
    public int? PrefetchCount { get; init; }

    /// <summary>Extra SUBSCRIBE headers (for example RabbitMQ's <c>durable</c> and <c>x-queue-name</c>).</summary>
    public IReadOnlyDictionary<string, string>? Headers { get; init; }

    /// <summary>Messages buffered before the client stops reading from the broker; null uses the client's setting.</summary>
    public int? BufferSize { get; init; }
}
