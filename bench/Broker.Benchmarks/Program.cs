using BenchmarkDotNet.Running;

// dotnet run -c Release --project bench/Broker.Benchmarks -- --filter '*'
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
