namespace Broker.Client;

/// <summary>
/// A transaction: SENDs, ACKs and NACKs made through it take effect together on <see cref="CommitAsync"/>, or not at all
/// on <see cref="AbortAsync"/>. Disposing an uncommitted transaction aborts it.
/// </summary>
public sealed class StompTransaction : IAsyncDisposable
{
    private readonly StompClient _client;
    private readonly List<StompMessage> _settled = [];
    private bool _finished;

    internal StompTransaction(StompClient client, string id)
    {
        _client = client;
        Id = id;
    }

    /// <summary>The transaction id.</summary>
    public string Id { get; }

    /// <summary>SEND as part of the transaction.</summary>
    public ValueTask SendAsync(string destination, ReadOnlyMemory<byte> body, StompSendOptions? options = null, CancellationToken cancellationToken = default) =>
        _client.SendCoreAsync(destination, body, options, Id, cancellationToken);

    /// <summary>SEND text as part of the transaction.</summary>
    public ValueTask SendAsync(string destination, string body, StompSendOptions? options = null, CancellationToken cancellationToken = default) =>
        _client.SendCoreAsync(destination, System.Text.Encoding.UTF8.GetBytes(body), StompClient.WithTextContentType(options), Id, cancellationToken);

    /// <summary>ACK a message as part of the transaction (if the transaction is aborted, the message can be settled again).</summary>
    public ValueTask AckAsync(StompMessage message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        return SettleAsync(message, ack: true, requeue: true, cancellationToken);
    }

    /// <summary>NACK a message as part of the transaction (if the transaction is aborted, the message can be settled again).</summary>
    public ValueTask NackAsync(StompMessage message, bool requeue = true, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        return SettleAsync(message, ack: false, requeue, cancellationToken);
    }

    /// <summary>COMMIT, and wait for the broker's RECEIPT.</summary>
    public async ValueTask CommitAsync(CancellationToken cancellationToken = default)
    {
        _finished = true;
        await _client.SendControlAsync(Stomp.StompCommand.Commit, [new("transaction", Id)], cancellationToken);
    }

    /// <summary>ABORT, and wait for the broker's RECEIPT.</summary>
    public async ValueTask AbortAsync(CancellationToken cancellationToken = default)
    {
        _finished = true;
        await _client.SendControlAsync(Stomp.StompCommand.Abort, [new("transaction", Id)], cancellationToken);
        ReleaseSettlements();
    }

    private async ValueTask SettleAsync(StompMessage message, bool ack, bool requeue, CancellationToken cancellationToken)
    {
        if (await _client.SettleAsync(message, ack, requeue, Id, cancellationToken))
        {
            lock (_settled)
            {
                _settled.Add(message);
            }
        }
    }

    // The broker discarded the transaction's ACKs and NACKs: their messages are unsettled again.
    private void ReleaseSettlements()
    {
        lock (_settled)
        {
            foreach (var message in _settled)
            {
                message.ClearSettled();
            }

            _settled.Clear();
        }
    }

    /// <summary>Aborts the transaction unless it was committed or aborted.</summary>
    public async ValueTask DisposeAsync()
    {
        if (!_finished && _client.State == StompConnectionState.Connected)
        {
            try
            {
                await AbortAsync();
            }
            catch (Exception ex) when (ex is StompConnectionException or StompErrorException or ObjectDisposedException)
            {
                // The connection is gone, and the broker discards uncommitted transactions with it.
                ReleaseSettlements();
            }
        }
    }
}
