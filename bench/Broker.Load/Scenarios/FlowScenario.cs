using System.Diagnostics;
using Broker.Load.Connections;
using Broker.Load.Reporting;
using Broker.Load.Tracking;

namespace Broker.Load.Scenarios;

/// <summary>
/// p2p, fan-out and latency: producers send to one destination, consumers check every message that comes back.
/// Timeline: subscribe (with receipts) → warm-up → measured window → producers stop → wait for their receipts →
/// drain until every expected delivery arrived or the drain stalls. Rates come from the measured window only.
/// </summary>
internal static class FlowScenario
{
    public static async Task<LoadResult> RunAsync(LoadOptions options, LoadResult result, CancellationToken cancellationToken)
    {
        var producerCount = options.Scenario == ScenarioKind.P2p ? options.Producers : 1;
        var consumerCount = options.Sink ? 0 : options.Scenario switch
        {
            ScenarioKind.P2p => options.Consumers,
            ScenarioKind.Fanout => options.Subscribers,
            _ => 1,
        };
        var deliveriesPerMessage = options.Sink ? 0 : options.Scenario == ScenarioKind.Fanout ? options.Subscribers : 1;
        var runId = Guid.NewGuid().ToString("N")[..8];
        var destination = options.Destination
            ?? (options.Scenario == ScenarioKind.Fanout ? $"/topic/stompload.{runId}" : $"/queue/stompload.{runId}");
        result.Parameters.Destination = destination;

        using var abort = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var failure = new RunFailure(abort);
        var body = new byte[options.BodyBytes];
        body.AsSpan().Fill((byte)'x');
        var measuredSeconds = options.DurationSeconds;
        var latency = options.Scenario == ScenarioKind.Latency
            ? new LatencyRecorder(checked((int)(options.Rate * (measuredSeconds + 1)) + 1024))
            : null;

        var consumers = new List<Consumer>();
        var producers = new List<Producer>();
        var loops = new List<Task>();
        try
        {
            // Consumers first, subscribed and confirmed, so the destination exists and nothing sent is missed.
            for (var i = 0; i < consumerCount; i++)
            {
                var connection = await LoadConnection.OpenAsync(options, options.SourceAddress(i), abort.Token);
                var consumer = new Consumer(i, connection, producerCount, failure, latency);
                consumers.Add(consumer);
                loops.Add(ReceiveAsync(connection, consumer, failure, $"consumer {i}", abort.Token));
                consumer.WriteSubscribe(destination);
                await connection.FlushAsync(abort.Token);
            }

            await Task.WhenAll(consumers.Select(c => c.Subscribed)).WaitAsync(TimeSpan.FromSeconds(30), abort.Token);

            for (var i = 0; i < producerCount; i++)
            {
                var connection = await LoadConnection.OpenAsync(options, options.SourceAddress(consumerCount + i), abort.Token);
                var producer = new Producer(i, connection, options, destination, body, failure);
                producers.Add(producer);
                loops.Add(ReceiveAsync(connection, producer, failure, $"producer {i}", abort.Token));
            }

            long TotalSent() => producers.Sum(p => p.Sent);
            long TotalReceived() => consumers.Sum(c => c.Received);

            // How far the producers are ahead of delivery: of all consumers together (a queue), of the slowest
            // subscriber (a topic). The sink delivers nothing, so nothing holds its producers back but receipts.
            Func<long> ahead = options.Sink
                ? () => 0
                : options.Scenario == ScenarioKind.Fanout
                    ? () => TotalSent() - consumers.Min(c => c.Received)
                    : () => TotalSent() - TotalReceived();

            await using var progress = new ProgressDisplay(() => (TotalSent(), TotalReceived()), options.Quiet) { Phase = "warm-up" };
            using var stopSending = CancellationTokenSource.CreateLinkedTokenSource(abort.Token);
            var start = Stopwatch.GetTimestamp();
            var warmupEnd = start + (long)(options.WarmupSeconds * Stopwatch.Frequency);
            var measureEnd = warmupEnd + (long)(measuredSeconds * Stopwatch.Frequency);
            latency?.SetWindow(warmupEnd, measureEnd);

            // Room for ~5 M messages per second per producer over the run: the sequence bitmaps stay bounded.
            var capacity = (long)((options.WarmupSeconds + measuredSeconds + 1) * 5_000_000);
            var sending = producers.Select(p => options.Scenario == ScenarioKind.Latency
                    ? Task.Run(() => p.RunPacedAsync(options.Rate, ahead, maxBacklog: (long)options.Rate * 5, capacity, stopSending.Token))
                    : Task.Run(() => p.RunThroughputAsync(options, ahead, capacity, stopSending.Token)))
                .ToArray();

            await DelayUntilAsync(warmupEnd, abort.Token);
            progress.Phase = "measuring";
            var (sent0, received0, at0) = (TotalSent(), TotalReceived(), Stopwatch.GetTimestamp());
            await DelayUntilAsync(measureEnd, abort.Token);
            var (sent1, received1, at1) = (TotalSent(), TotalReceived(), Stopwatch.GetTimestamp());
            await stopSending.CancelAsync();
            progress.Phase = "draining";
            await Task.WhenAll(sending);

            foreach (var producer in producers)
            {
                if (!await producer.WaitForReceiptsAsync(TimeSpan.FromSeconds(options.DrainTimeoutSeconds), abort.Token))
                {
                    failure.Fail($"producer {producer.Index}: receipts did not come within {options.DrainTimeoutSeconds} s");
                }
            }

            var expected = TotalSent() * deliveriesPerMessage;
            await DrainAsync(() => consumers.Sum(c => c.Distinct), expected, TimeSpan.FromSeconds(options.DrainTimeoutSeconds), abort.Token);

            var window = Stopwatch.GetElapsedTime(at0, at1).TotalSeconds;
            result.DurationSeconds = window;
            result.SentPerSecond = (sent1 - sent0) / window;
            result.ReceivedPerSecond = (received1 - received0) / window;
            result.Sent = TotalSent();
            result.Expected = expected;
            result.Received = TotalReceived();
            Tally(result, producers, consumers, options.Scenario == ScenarioKind.Fanout);
            result.Latency = latency?.Summarize();
            if (result.Latency is not null && producers.Sum(p => p.PacedWrites) is > 0 and var writes)
            {
                result.Latency.MessagesPerWrite = result.Sent / (double)writes;
            }
        }
        catch (OperationCanceledException) when (abort.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            // A participant failed; its error is the result.
        }
        catch (Exception ex) when (ex is IOException or System.Net.Sockets.SocketException or System.Net.WebSockets.WebSocketException or TimeoutException or Broker.Stomp.StompProtocolException)
        {
            failure.Fail(ex.Message);
        }
        finally
        {
            await abort.CancelAsync();
            foreach (var connection in consumers.Select(c => c.Connection).Concat(producers.Select(p => p.Connection)))
            {
                await connection.DisposeAsync();
            }

            await Task.WhenAll(loops);
        }

        result.Error = failure.Error;
        result.Ok = result.Error is null && result.Lost == 0 && result.Duplicates == 0 && result.Reordered == 0
            && (options.Sink || result.Received == result.Expected);
        return result;
    }

    // Loss, duplicates and order, from every consumer's bitmaps: a queue's deliveries are split among consumers, so
    // a message counts once whichever consumer had it; a topic's go to every subscriber, so each is checked alone.
    private static void Tally(LoadResult result, List<Producer> producers, List<Consumer> consumers, bool fanout)
    {
        long distinct = 0, duplicates = 0, reordered = 0;
        foreach (var producer in producers)
        {
            var sets = consumers.Select(c => c.FromProducer(producer.Index)).ToList();
            duplicates += sets.Sum(s => s.Duplicates);
            reordered += sets.Sum(s => s.Reordered);
            if (fanout)
            {
                distinct += sets.Sum(s => SequenceSet.UnionCount([s], producer.Sent));
            }
            else
            {
                var union = SequenceSet.UnionCount(sets, producer.Sent);
                duplicates += sets.Sum(s => s.Count) - union;
                distinct += union;
            }
        }

        result.Lost = result.Expected - distinct;
        result.Duplicates = duplicates;
        result.Reordered = reordered;
    }

    private static async Task ReceiveAsync(LoadConnection connection, IFrameHandler handler, RunFailure failure, string who, CancellationToken cancellationToken)
    {
        try
        {
            await connection.ReceiveLoopAsync(handler, cancellationToken);
            if (!cancellationToken.IsCancellationRequested)
            {
                failure.Fail($"{who}: the broker closed the connection");
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            failure.Fail($"{who}: {ex.GetType().Name}: {ex.Message}");
        }
        catch (Exception)
        {
            // Torn down by the run's end.
        }
    }

    private static async Task DrainAsync(Func<long> received, long expected, TimeSpan stall, CancellationToken cancellationToken)
    {
        var last = received();
        var lastProgress = Stopwatch.GetTimestamp();
        while (last < expected && Stopwatch.GetElapsedTime(lastProgress) < stall)
        {
            await Task.Delay(10, cancellationToken);
            var now = received();
            if (now != last)
            {
                (last, lastProgress) = (now, Stopwatch.GetTimestamp());
            }
        }
    }

    private static Task DelayUntilAsync(long timestamp, CancellationToken cancellationToken)
    {
        var remaining = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), timestamp);
        return remaining > TimeSpan.Zero ? Task.Delay(remaining, cancellationToken) : Task.CompletedTask;
    }
}
