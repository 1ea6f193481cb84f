using System.Runtime.CompilerServices;
using System.Threading.Channels;

namespace Broker.Client;

/// <summary>
/// A live subscription: read its messages with <c>await foreach</c> (or give a handler to
/// <see cref="StompClient.SubscribeAsync(string, Func{StompMessage, CancellationToken, ValueTask}, StompSubscribeOptions?, CancellationToken)"/>);
/// dispose it to UNSUBSCRIBE. It survives reconnects: the client subscribes again with the same id. One reader at a time.
/// </summary>
public sealed class StompSubscription : IAsyncEnumerable<StompMessage>, IAsyncDisposable
{
    private readonly StompClient _client;
    private readonly Channel<StompMessage> _messages;
    private int _disposed;

    internal StompSubscription(StompClient client, string id, string destination, StompSubscribeOptions options, int bufferSize)
    {
        _client = client;
        Id = id;
        Destination = destination;
        Options = options;
        // Bounded: when the application reads slower than messages arrive, the client stops reading the socket and the
        // broker's flow control takes over, instead of memory growing.
        _messages = Channel.CreateBounded<StompMessage>(new BoundedChannelOptions(bufferSize)
        {
            SingleWriter = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
    }

    /// <summary>The subscription id.</summary>
    public string Id { get; }

    /// <summary>The destination.</summary>
    public string Destination { get; }

    /// <summary>What the subscription was made with.</summary>
    public StompSubscribeOptions Options { get; }

    internal Task? HandlerTask { get; set; }

    internal bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    /// <summary>Reads messages until the subscription is disposed or the client closes.</summary>
    public async IAsyncEnumerable<StompMessage> ReadAllAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await foreach (var message in _messages.Reader.ReadAllAsync(cancellationToken))
        {
            yield return message;
        }
    }

    /// <summary>The next message; throws <see cref="ChannelClosedException"/> once the subscription has ended.</summary>
    public ValueTask<StompMessage> ReceiveAsync(CancellationToken cancellationToken = default) => _messages.Reader.ReadAsync(cancellationToken);

    /// <inheritdoc/>
    public IAsyncEnumerator<StompMessage> GetAsyncEnumerator(CancellationToken cancellationToken = default) =>
        ReadAllAsync(cancellationToken).GetAsyncEnumerator(cancellationToken);

    /// <summary>UNSUBSCRIBE (when still connected) and end the message stream.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        // Ends the stream first: a reader waiting for room in a full buffer gives up that message, and goes on to read
        // the UNSUBSCRIBE's receipt (the broker takes back whatever was not acknowledged).
        Complete();
        await _client.UnsubscribeAsync(this);
        if (HandlerTask is { } handler)
        {
            await handler.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    internal ValueTask WriteAsync(StompMessage message, CancellationToken cancellationToken) => _messages.Writer.WriteAsync(message, cancellationToken);

    internal void Complete(Exception? error = null) => _messages.Writer.TryComplete(error);
}
