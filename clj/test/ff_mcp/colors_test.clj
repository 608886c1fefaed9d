(ns ff-mcp.colors-test
  "Tests for ff-mcp.colors against published vectors and the shared golden file."
  (:require [clojure.data.json :as json]
            [clojure.java.io :as io]
            [clojure.test :refer [are deftest is testing]]
            [ff-mcp.colors :as c]))

(defn- golden-path
  []
  (or (System/getProperty "ff_mcp.golden")
      (System/getenv "FF_MCP_GOLDEN")
      "tests/fixtures/gay_colors_golden.json"))

(defn- thrown-data
  [f]
  (try (f) nil (catch clojure.lang.ExceptionInfo e (assoc (ex-data e) :message (ex-message e)))))

(deftest mix64-and-splitmix64
  (is (= (c/splitmix64 1234567) (c/mix64 (unchecked-add 1234567 c/GOLDEN))))
  (is (= 6457827717110365317N (c/unsigned (c/splitmix64 1234567)))))

(deftest splitmix-stream
  (are [seed expected] (= expected (map c/unsigned (take (count expected) (c/splitmix-stream seed))))
    1234567 [6457827717110365317N 3203168211198807973N 9817491932198370423N
             4593380528125082431N 16408922859458223821N]
    0x6761795f636f6c6f [0xF061EBBC2CA74D78N 0x34DC5AA0B7117465N]
    1069 [0x97629500787D9C76N 0xB30FB97B4961612FN 0x400598BC483056FDN]))

(deftest hash-color
  (is (= [0x55 0xB0 0xE6] (c/hash-color 1069 1)))
  (are [seed start hexes] (= hexes (map :hex (c/colors seed start (count hexes))))
    1069 1 ["#55B0E6" "#C8A0C2" "#FFA6C2" "#789A20" "#54C1ED" "#285DD0"
            "#6233EF" "#D4BE57" "#389BC3" "#7278C0" "#5FA42B" "#C3F7FA"]
    42 1 ["#03F166" "#E375EF" "#74C905" "#F22348"]))

(deftest color-at
  (is (= {:index 1 :hex "#55B0E6" :r 85 :g 176 :b 230 :trit -1}
         (dissoc (c/color-at 1069 1) :hue)))
  (is (< 202.3448 (:hue (c/color-at 1069 1)) 202.3449)))

(deftest colors
  (testing "every index of the golden file, written by the Python ff_mcp.gf3"
    (let [golden (json/read-str (slurp (io/file (golden-path))) :key-fn keyword)]
      (are [seed] (= (get-in golden [:seeds seed])
                     (map #(select-keys % [:index :hex :trit]) (c/colors (parse-long (name seed)) 0 1000)))
        :1069
        :42)))
  (testing "the last indices below 2**64 and out-of-range arguments"
    (is (= ["#3B34E3" "#24D131" "#F02814"] (map :hex (c/colors 5 18446744073709551613N 3))))
    (are [f field] (= field (:field (thrown-data f)))
      #(c/colors -1 0 1) :seed
      #(c/colors 1069 18446744073709551616N 1) :start
      #(c/colors 1069 0 10001) :count
      #(c/hash-color 1069 -3) :index)))

(deftest trit-from-hue
  (are [hue trit] (= trit (c/trit-from-hue hue))
    0 1, 59.999 1, 60 0, 179.999 0, 180 -1, 299.999 -1, 300 1, 360 1, -61 -1, 420 0)
  (is (= "hue must be a finite number of degrees, got ##NaN"
         (:message (thrown-data #(c/trit-from-hue ##NaN))))))

(deftest hue-of
  (are [rgb hue] (= hue (c/hue-of rgb))
    [9 9 9] 0.0, [255 0 0] 0.0, [255 255 0] 60.0, [0 255 0] 120.0, [0 0 255] 240.0, [255 0 1] 359.7647058823529))

(deftest trit-colors
  (are [trit hex] (and (= hex (c/trit-colors trit)) (= trit (c/trit-from-hue (c/hue-of (c/parse-color hex)))))
    1 "#D82626", 0 "#26D826", -1 "#2626D8"))

(deftest balanced?
  (are [trits expected] (= expected (c/balanced? trits))
    [-1 0 1] true, [1 1 1] true, [] true, [1 1] false, [-1 0 0] false))

(deftest complete-triad
  (are [a b expected] (= expected (c/complete-triad a b))
    -1 0 1, 1 1 1, 0 0 0, -1 -1 -1, 1 -1 0)
  (is (= 2 (:value (thrown-data #(c/complete-triad 2 0))))))

(deftest parse-color
  (are [value rgb] (= rgb (c/parse-color value))
    "#FF0080" [255 0 128], "ff0080" [255 0 128], [255 0 128] [255 0 128], [1.0 0.0 0.5] [255 0 128])
  (are [value] (= value (:value (thrown-data #(c/parse-color value))))
    "#FFF" "#GG0000" [255.0 0 0] [1 2] [256 0 0] [-1 0 0] [true 0 0] nil {:r 1}))
