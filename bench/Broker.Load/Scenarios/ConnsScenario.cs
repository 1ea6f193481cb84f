using System.Globalization;
using Broker.Load.Connections;
using Broker.Load.Reporting;

namespace Broker.Load.Scenarios;

/// <summary>
/// N idle connections, each through CONNECT/CONNECTED with heart-beats off, then held. The broker's resident memory
/// (VmRSS of <c>--pid</c>) is read before and after, each time once it has stopped moving, and divided by N.
/// </summary>
internal static class ConnsScenario
{
    public static async Task<LoadResult> RunAsync(LoadOptions options, LoadResult result, CancellationToken cancellationToken)
    {
        var connections = new LoadConnection?[options.Connections];
        var opened = 0;
        string? error = null;
        try
        {
            if (options.BrokerPid is { } pid)
            {
                if (!File.Exists($"/proc/{pid}/status"))
                {
                    result.Error = $"no process {pid} (--pid) to read the memory of";
                    return result;
                }

                result.RssBeforeBytes = await SettledRssAsync(pid, cancellationToken);
            }

            await using (var progress = new ProgressDisplay(() => (Volatile.Read(ref opened), 0), options.Quiet) { Phase = "opening" })
            {
                using var abort = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                var next = -1;
                async Task OpenSomeAsync()
                {
                    int index;
                    while ((index = Interlocked.Increment(ref next)) < connections.Length && !abort.IsCancellationRequested)
                    {
                        try
                        {
                            connections[index] = await LoadConnection.OpenAsync(options, options.SourceAddress(index), abort.Token);
                            Interlocked.Increment(ref opened);
                        }
                        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
                        {
                            lock (connections)
                            {
                                error ??= $"connection {index + 1:N0} failed after {Volatile.Read(ref opened):N0} were open: {ex.GetType().Name}: {ex.Message}";
                            }

                            await abort.CancelAsync();
                        }
                    }
                }

                await Task.WhenAll(Enumerable.Range(0, options.ConnectConcurrency).Select(_ => Task.Run(OpenSomeAsync, CancellationToken.None)));
                progress.Phase = "holding";
            }

            result.ConnectionsOpened = opened;
            if (options.BrokerPid is { } brokerPid && opened > 0)
            {
                try
                {
                    result.RssAfterBytes = await SettledRssAsync(brokerPid, cancellationToken);
                    result.RssPerConnectionBytes = (result.RssAfterBytes - result.RssBeforeBytes) / opened;
                }
                catch (IOException ex)
                {
                    error ??= $"the broker's memory could not be read (did process {brokerPid} exit?): {ex.Message}";
                }
            }

            if (options.HoldSeconds > 0 && opened > 0)
            {
                await Task.Delay(TimeSpan.FromSeconds(options.HoldSeconds), cancellationToken);
            }
        }
        finally
        {
            foreach (var connection in connections)
            {
                if (connection is not null)
                {
                    await connection.DisposeAsync();
                }
            }
        }

        result.Error = error;
        result.Ok = error is null && opened == options.Connections;
        return result;
    }

    /// <summary>VmRSS once two readings a second apart differ by less than 1 %, or after 15 s.</summary>
    private static async Task<long> SettledRssAsync(int pid, CancellationToken cancellationToken)
    {
        var last = ReadRss(pid);
        for (var i = 0; i < 15; i++)
        {
            await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken);
            var now = ReadRss(pid);
            if (Math.Abs(now - last) < last / 100)
            {
                return now;
            }

            last = now;
        }

        return last;
    }

    public static long ReadRss(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                var kb = line["VmRSS:".Length..].Trim().Split(' ')[0];
                return long.Parse(kb, CultureInfo.InvariantCulture) * 1024;
            }
        }

        throw new InvalidOperationException($"no VmRSS in /proc/{pid}/status");
    }
}
