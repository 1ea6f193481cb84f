using RabbitMQ.Client;
using RabbitMQ.Client.Events;

namespace Broker.Backends.RabbitMq;

/// <summary>
/// One confirm-mode channel with many publishes in flight. Publishes are written in call order under a gate, each
/// remembered by its delivery tag; RabbitMQ's basic.ack / basic.nack (often "multiple", covering every tag up to
/// one) complete them in order. We track confirms ourselves rather than with the client's own tracking, which waits
/// for each confirm inside <c>BasicPublishAsync</c> and has had concurrency bugs (rabbitmq-dotnet-client #1924).
/// The channel is replaced when it or its connection closes; what was in flight on it then fails.
/// </summary>
internal sealed class ConfirmPublisher : IDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly Lock _pendingLock = new();
    private readonly SortedDictionary<ulong, TaskCompletionSource> _pending = [];
    private IChannel? _channel;
    private IConnection? _owner;

    /// <summary>Writes the message; the task returned completes when RabbitMQ confirms it.</summary>
    public async ValueTask<Task> PublishAsync(
        IConnection connection, string exchange, string routingKey, BasicProperties properties, ReadOnlyMemory<byte> body, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            var channel = await GetChannelAsync(connection, cancellationToken);
            var tag = await channel.GetNextPublishSequenceNumberAsync(cancellationToken);
            var confirmed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_pendingLock)
            {
                _pending.Add(tag, confirmed);
            }

            try
            {
                await channel.BasicPublishAsync(exchange, routingKey, mandatory: false, properties, body, cancellationToken);
            }
            catch (Exception ex)
            {
                confirmed.TrySetException(ex);
                throw;
            }

            return confirmed.Task;
        }
        finally
        {
            _gate.Release();
        }
    }

    public void Dispose()
    {
        _channel?.Dispose();
        FailAll(new ObjectDisposedException(nameof(ConfirmPublisher)));
        _gate.Dispose();
    }

    private async ValueTask<IChannel> GetChannelAsync(IConnection connection, CancellationToken cancellationToken)
    {
        if (_channel is { IsOpen: true } && ReferenceEquals(_owner, connection))
        {
            return _channel;
        }

        // Whatever the old channel still owed is lost with it.
        FailAll(new RabbitMQ.Client.Exceptions.AlreadyClosedException(new ShutdownEventArgs(ShutdownInitiator.Library, 0, "publisher channel replaced")));
        _channel?.Dispose();
        var channel = await connection.CreateChannelAsync(
            new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: false),
            cancellationToken);
        channel.BasicAcksAsync += (_, e) =>
        {
            Complete(e.DeliveryTag, e.Multiple, failure: null);
            return Task.CompletedTask;
        };
        channel.BasicNacksAsync += (_, e) =>
        {
            Complete(e.DeliveryTag, e.Multiple, new PublishRefusedException(e.DeliveryTag));
            return Task.CompletedTask;
        };
        channel.ChannelShutdownAsync += (_, e) =>
        {
            FailAll(new RabbitMQ.Client.Exceptions.AlreadyClosedException(e));
            return Task.CompletedTask;
        };
        (_channel, _owner) = (channel, connection);
        return channel;
    }

    // Confirms usually come in order, but RabbitMQ does not promise it: a single one is looked up by its tag, a
    // "multiple" one settles every tag up to and including its own.
    private void Complete(ulong tag, bool multiple, Exception? failure)
    {
        lock (_pendingLock)
        {
            if (!multiple)
            {
                if (_pending.Remove(tag, out var one))
                {
                    Settle(one, failure);
                }

                return;
            }

            while (_pending.Count > 0)
            {
                using var first = _pending.GetEnumerator();
                first.MoveNext();
                var (firstTag, confirmed) = first.Current;
                if (firstTag > tag)
                {
                    return;
                }

                _pending.Remove(firstTag);
                Settle(confirmed, failure);
            }
        }
    }

    private static void Settle(TaskCompletionSource confirmed, Exception? failure)
    {
        if (failure is null)
        {
            confirmed.TrySetResult();
        }
        else
        {
            confirmed.TrySetException(failure);
        }
    }

    private void FailAll(Exception failure)
    {
        lock (_pendingLock)
        {
            foreach (var confirmed in _pending.Values)
            {
                confirmed.TrySetException(failure);
            }

            _pending.Clear();
        }
    }
}

/// <summary>RabbitMQ answered a publish with basic.nack: it did not take the message.</summary>
internal sealed class PublishRefusedException(ulong deliveryTag) : Exception($"RabbitMQ refused message {deliveryTag} (basic.nack)");
