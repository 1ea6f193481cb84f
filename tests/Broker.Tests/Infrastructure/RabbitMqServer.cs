using System.Diagnostics;

namespace Broker.Tests.Infrastructure;

/// <summary>
/// A real RabbitMQ for the tests: the one at <c>RABBITMQ_URL</c> when set, otherwise a private node (Debian
/// <c>rabbitmq-server</c>, installed by tests/run.sh) with its own node name, free loopback ports and a temporary
/// data folder, started by tests/rabbitmq/start-rabbitmq.sh and stopped after the run — what Testcontainers would
/// give, without Docker. The private node also runs RabbitMQ's own STOMP and Web-STOMP plugins.
/// </summary>
public sealed class RabbitMqServer : IAsyncLifetime
{
    private readonly string _workDir = Path.Combine(Path.GetTempPath(), "stompbroker-rabbitmq-" + Guid.NewGuid().ToString("N")[..8]);
    private bool _private;

    /// <summary>The AMQP URI.</summary>
    public string AmqpUri { get; private set; } = "";

    /// <summary>The AMQP port.</summary>
    public int AmqpPort { get; private set; }

    /// <summary>RabbitMQ's own STOMP plugin (private node only).</summary>
    public int StompPort { get; private set; }

    /// <summary>RabbitMQ's own Web-STOMP plugin (private node only).</summary>
    public Uri? WebStompUri { get; private set; }

    /// <summary>Whether the node is ours to stop and start (fault tests need that).</summary>
    public bool IsPrivate => _private;

    /// <summary>The private node's Erlang VM (beam.smp) process.</summary>
    public int Pid { get; private set; }

    public async Task InitializeAsync()
    {
        if (Environment.GetEnvironmentVariable("RABBITMQ_URL") is { Length: > 0 } url)
        {
            AmqpUri = url;
            AmqpPort = new Uri(url).Port;
            return;
        }

        _private = true;
        await StartAsync();
    }

    /// <summary>Starts the private node (again, on the same ports and data: durable queues and persistent messages survive).</summary>
    public async Task StartAsync()
    {
        var values = await RunScriptAsync("start-rabbitmq.sh", _workDir);
        AmqpPort = int.Parse(values["AMQP_PORT"], System.Globalization.CultureInfo.InvariantCulture);
        StompPort = int.Parse(values["STOMP_PORT"], System.Globalization.CultureInfo.InvariantCulture);
        WebStompUri = new Uri(values["WEB_STOMP_URL"]);
        Pid = int.Parse(values["PID"], System.Globalization.CultureInfo.InvariantCulture);
        AmqpUri = $"amqp://guest:guest@127.0.0.1:{AmqpPort}/";
    }

    /// <summary>
    /// Freezes the private node (SIGSTOP) while <paramref name="whileFrozen"/> runs, then lets it go on (SIGCONT): a
    /// RabbitMQ that keeps its connections open and answers nothing, as one stalled on disk or in a long GC does.
    /// </summary>
    public async Task WhileFrozenAsync(Func<Task> whileFrozen)
    {
        await SignalAsync("STOP");
        try
        {
            await whileFrozen();
        }
        finally
        {
            await SignalAsync("CONT");
        }
    }

    private async Task SignalAsync(string signal)
    {
        using var kill = Process.Start("kill", ["-" + signal, Pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        await kill.WaitForExitAsync();
        if (kill.ExitCode != 0)
        {
            throw new InvalidOperationException($"kill -{signal} {Pid} failed ({kill.ExitCode})");
        }
    }

    /// <summary>Stops the private node, keeping its data, as an outage would.</summary>
    public Task StopAsync() => RunScriptAsync("stop-rabbitmq.sh", _workDir);

    public async Task DisposeAsync()
    {
        if (_private)
        {
            await RunScriptAsync("stop-rabbitmq.sh", _workDir, "--purge");
        }
    }

    private static async Task<Dictionary<string, string>> RunScriptAsync(string script, params string[] args)
    {
        var info = new ProcessStartInfo("bash")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(Path.Combine(ExternalClient.RepositoryRoot, "tests", "rabbitmq", script));
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info) ?? throw new InvalidOperationException("could not run " + script);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await process.WaitForExitAsync(timeout.Token);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{script} failed ({process.ExitCode}): {await stderr}");
        }

        return (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => line.Split('=', 2))
            .Where(parts => parts.Length == 2)
            .ToDictionary(parts => parts[0].Trim(), parts => parts[1].Trim());
    }
}

/// <summary>One RabbitMQ node shared by every test class in the collection.</summary>
[CollectionDefinition(Name)]
public sealed class RabbitMqTestGroup : ICollectionFixture<RabbitMqServer>
{
    public const string Name = "RabbitMQ";
}
